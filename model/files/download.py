"""HTTP downloads that survive cut connections: bytes go to a `.part` file, resumed with Range requests.

`fetch_file` gets a whole file (md5-checked) under its final name; `fetch_range` appends a byte range of a URL to a
`.part` file (the remote-zip reader uses it for single archive members). Only the standard library's urllib.
A progress bar is shown only when stderr is a terminal. Must not know about zips, MNIST or PGDL.
"""
import hashlib
import http.client
import logging
import os
import re
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from model.errors import DataError

log = logging.getLogger(__name__)

CHUNK = 1 << 20
TIMEOUT_S = 60.0
RETRIES = 5
RETRY_WAIT_S = 1.0


class RangeNotSupported(Exception):
    """The server answered a Range request with the whole file (status 200)."""


def _progress(name: str):
    """A byte progress bar on stderr, shown only when stderr is a terminal."""
    from tqdm import tqdm

    return tqdm(unit="B", unit_scale=True, desc=name, leave=False, disable=not sys.stderr.isatty())


def fetch_range(url: str, part: Path, start: int = 0, stop: int | None = None, *, retries: int = RETRIES,
                retry_wait_s: float = RETRY_WAIT_S) -> Path:
    """Make `part` hold bytes `[start, stop)` of `url` (to the end when `stop` is None); return `part`.

    Bytes already in `part` are kept and the rest is requested with `Range`, so a cut connection or an earlier,
    interrupted process resumes where it stopped. A server that ignores Range (status 200) restarts the file when
    `start == 0 and stop is None`, otherwise raises `RangeNotSupported`. After `retries` failed attempts in a row
    without progress raises `DataError` naming the URL.
    """
    part = Path(part)
    part.parent.mkdir(parents=True, exist_ok=True)
    failures = 0
    with open(part, "ab") as out, _progress(part.name.removesuffix(".part")) as bar:
        while True:
            have = out.tell()
            if stop is not None and have >= stop - start:
                if have > stop - start:
                    raise DataError(f"{part}: holds {have} bytes, more than the {stop - start} expected; delete it")
                return part
            headers = {}
            if start + have > 0 or stop is not None:
                headers["Range"] = f"bytes={start + have}-{'' if stop is None else stop - 1}"
            before = have
            try:
                with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=TIMEOUT_S) as resp:
                    expected = _check_response(url, resp, headers, start + have, stop)
                    if resp.status == 200 and have:
                        out.seek(0)
                        out.truncate()
                        have = before = 0
                    bar.reset(total=None if expected is None else have + expected)
                    bar.update(have)
                    while chunk := resp.read(CHUNK):
                        out.write(chunk)
                        bar.update(len(chunk))
                    out.flush()
                    got = out.tell() - before
                    if expected is None or got == expected:
                        if stop is None:
                            return part
                        continue
                    reason = f"connection closed after {got} of {expected} bytes"
            except urllib.error.HTTPError as err:
                if err.code == 416 and stop is None and have > 0:
                    return part  # the part file already holds the whole file
                if err.code < 500:
                    raise DataError(f"{url}: HTTP {err.code} {err.reason}") from None
                reason = f"HTTP {err.code}"
            except (OSError, http.client.HTTPException) as err:
                out.flush()
                reason = f"{type(err).__name__}: {err}"
            failures = 0 if out.tell() > before else failures + 1
            if failures > retries:
                raise DataError(f"{url}: download failed {failures} times in a row ({reason}); run again to resume")
            log.info("%s: %s; resuming at byte %d", url, reason, start + out.tell())
            time.sleep(retry_wait_s * min(2 ** failures, 30))


def _check_response(url: str, resp, headers: dict, offset: int, stop: int | None) -> int | None:
    """Validate a 200/206 answer to a request from byte `offset`; return the number of body bytes expected."""
    length = resp.headers.get("Content-Length")
    length = int(length) if length is not None else None
    if resp.status == 206:
        match = re.match(r"bytes (\d+)-(\d+)/(\d+|\*)", resp.headers.get("Content-Range", ""))
        if not match or int(match.group(1)) != offset:
            raise DataError(f"{url}: asked for bytes from {offset}, server sent Content-Range "
                            f"{resp.headers.get('Content-Range')!r}")
        return int(match.group(2)) - int(match.group(1)) + 1
    if resp.status == 200:
        if "Range" in headers and stop is not None:
            raise RangeNotSupported(url)
        return length  # a whole file (a resume the server ignored restarts from zero)
    raise DataError(f"{url}: unexpected HTTP status {resp.status}")


def md5_of(path: Path) -> str:
    """Hex md5 of a file's bytes."""
    digest = hashlib.md5()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def fetch_file(url: str, dest: str | Path, *, md5: str | None = None, force: bool = False,
               retries: int = RETRIES, retry_wait_s: float = RETRY_WAIT_S) -> Path:
    """Download `url` to `dest` (via `dest.part`, renamed only once complete and its md5 matches); return `dest`.

    An existing `dest` with the right md5 is kept; one with a wrong md5 raises `DataError` unless `force`.
    """
    dest = Path(dest)
    if dest.exists() and not force:
        if md5 is None or md5_of(dest) == md5:
            log.info("%s: already there", dest)
            return dest
        raise DataError(f"{dest}: exists but its md5 is not {md5}; delete it or use --force")
    part = dest.with_name(dest.name + ".part")
    fetch_range(url, part, retries=retries, retry_wait_s=retry_wait_s)
    if md5 is not None and (got := md5_of(part)) != md5:
        part.unlink()
        raise DataError(f"{url}: md5 {got}, expected {md5} (corrupted or wrong file; run again)")
    os.replace(part, dest)
    log.info("%s: downloaded", dest)
    return dest
