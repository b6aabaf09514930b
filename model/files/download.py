"""HTTP downloads that survive cut connections: bytes go to a `.part` file, resumed with Range requests.

`fetch_file` gets a whole file (md5-checked) under its final name; `fetch_range` appends a byte range of a URL to a
`.part` file (the remote-zip reader uses it for single archive members). Only the standard library's urllib.
A progress bar is shown only when stderr is a terminal. Must not know about zips, MNIST or PGDL.
"""
import errno
import hashlib
import http.client
import logging
import os
import re
import socket
import ssl
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from model.errors import DataError

log = logging.getLogger(__name__)

CHUNK = 1 << 20
TIMEOUT_S = 30.0  # seconds per socket operation (connecting, each read)
RETRIES = 5  # attempts after the first, whatever each attempt achieved (a later run resumes the .part file)
RETRY_WAIT_S = 1.0  # first wait between attempts; doubled each time, at most 30 s
DEADLINE_S = 6 * 3600.0  # per file and call: no attempt starts, and no transfer goes on, past it
PERMANENT_ERRNOS = {errno.ECONNREFUSED, errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EADDRNOTAVAIL}


class RangeNotSupported(Exception):
    """The server answered a Range request with the whole file (status 200)."""


class Unreachable(DataError):
    """The server cannot be reached at all (unknown host, connection refused, no route) or does not answer within
    `TIMEOUT_S`: retrying now would not help, so it is not retried (a caller with mirrors tries the next one)."""


def _progress(name: str):
    """A byte progress bar on stderr, shown only when stderr is a terminal."""
    from tqdm import tqdm

    return tqdm(unit="B", unit_scale=True, desc=name, leave=False, disable=not sys.stderr.isatty())


def _unreachable(err: BaseException) -> bool:
    """Whether `err` (from `urlopen`) says the host cannot be reached: a name that does not resolve, a refused
    connection, no route, a certificate that does not verify."""
    reason = err.reason if isinstance(err, urllib.error.URLError) else err
    return (isinstance(reason, (socket.gaierror, ssl.SSLCertVerificationError))
            or (isinstance(reason, OSError) and reason.errno in PERMANENT_ERRNOS))


def _timed_out(err: BaseException) -> bool:
    reason = err.reason if isinstance(err, urllib.error.URLError) else err
    return isinstance(reason, TimeoutError)


def _write(out, data: bytes, part: Path) -> None:
    """Append to the part file; a local write error (a full disk, a read-only folder) is permanent: `DataError`."""
    try:
        out.write(data)
    except OSError as err:
        raise DataError(f"{part}: cannot write the download ({err.strerror or err}); free space or choose another "
                        "folder, then run again to resume") from None


def fetch_range(url: str, part: Path, start: int = 0, stop: int | None = None, *, retries: int = RETRIES,
                retry_wait_s: float = RETRY_WAIT_S, deadline_s: float = DEADLINE_S) -> Path:
    """Make `part` hold bytes `[start, stop)` of `url` (to the end when `stop` is None); return `part`.

    Bytes already in `part` are kept and the rest is requested with `Range`, so a cut connection or an earlier,
    interrupted process resumes where it stopped. A server that ignores Range (status 200) restarts the file when
    `start == 0 and stop is None`, otherwise raises `RangeNotSupported`. Gives up with `DataError` naming the URL after
    `1 + retries` attempts (each counts, whatever it fetched) or once `deadline_s` seconds have passed; at once, as
    `Unreachable`, when the host cannot be reached or does not answer its first request within `TIMEOUT_S`; at once
    on an HTTP 4xx (but 408, 429) and on a local write error.
    """
    part = Path(part)
    part.parent.mkdir(parents=True, exist_ok=True)
    try:
        return _fetch_range(url, part, start, stop, retries, retry_wait_s, deadline_s)
    except BaseException:
        if part.exists() and part.stat().st_size == 0:  # nothing fetched: leave no empty .part behind
            part.unlink()
        raise


def _fetch_range(url: str, part: Path, start: int, stop: int | None, retries: int, retry_wait_s: float,
                 deadline_s: float) -> Path:
    deadline = time.monotonic() + deadline_s
    attempts, answered = 0, False
    with open(part, "ab") as out, _progress(part.name.removesuffix(".part")) as bar:
        while True:
            have = out.tell()
            if stop is not None and have >= stop - start:
                if have > stop - start:
                    raise DataError(f"{part}: holds {have} bytes, more than the {stop - start} expected; delete it")
                return part
            if time.monotonic() > deadline:
                raise DataError(f"{url}: not complete after the {deadline_s:.0f} s deadline ({have} bytes in {part}); "
                                "run again to resume")
            attempts += 1
            headers = {}
            if start + have > 0 or stop is not None:
                headers["Range"] = f"bytes={start + have}-{'' if stop is None else stop - 1}"
            try:
                with urllib.request.urlopen(urllib.request.Request(url, headers=headers),
                                            timeout=TIMEOUT_S) as resp:
                    answered = True
                    expected = _check_response(url, resp, headers, start + have, stop)
                    if resp.status == 200 and have:
                        out.seek(0)
                        out.truncate()
                        have = 0
                    bar.reset(total=None if expected is None else have + expected)
                    bar.update(have)
                    got = 0
                    while time.monotonic() <= deadline and (chunk := resp.read(
                            CHUNK if expected is None else min(CHUNK, expected - got))):
                        _write(out, chunk, part)
                        got += len(chunk)
                        bar.update(len(chunk))
                    out.flush()
                    if expected is None or got == expected:
                        if stop is None:
                            return part
                        continue
                    reason = f"connection closed after {got} of {expected} bytes"
            except urllib.error.HTTPError as err:
                answered = True
                if err.code == 416 and stop is None and have > 0:
                    return part  # the part file already holds the whole file
                if err.code < 500 and err.code not in (408, 429):
                    raise DataError(f"{url}: HTTP {err.code} {err.reason}") from None
                reason = f"HTTP {err.code}"
            except (OSError, http.client.HTTPException) as err:
                out.flush()
                reason = f"{type(err).__name__}: {getattr(err, 'reason', None) or err}"
                if _unreachable(err) or (_timed_out(err) and not answered):
                    raise Unreachable(f"{url}: cannot be reached ({reason})") from None
            if attempts > retries:
                raise DataError(f"{url}: download failed after {attempts} attempt{'s' * (attempts > 1)} ({reason}); "
                                "run again to resume")
            log.info("%s: %s; attempt %d of %d, resuming at byte %d", url, reason, attempts + 1, retries + 1,
                     start + out.tell())
            time.sleep(max(0.0, min(retry_wait_s * 2 ** (attempts - 1), 30.0, deadline - time.monotonic())))


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
               retries: int = RETRIES, retry_wait_s: float = RETRY_WAIT_S, deadline_s: float = DEADLINE_S) -> Path:
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
    fetch_range(url, part, retries=retries, retry_wait_s=retry_wait_s, deadline_s=deadline_s)
    if md5 is not None and (got := md5_of(part)) != md5:
        part.unlink()
        raise DataError(f"{url}: md5 {got}, expected {md5} (corrupted or wrong file; run again)")
    try:
        os.replace(part, dest)
    except OSError as err:
        raise DataError(f"{dest}: cannot rename the finished download to it ({err.strerror or err})") from None
    log.info("%s: downloaded", dest)
    return dest
