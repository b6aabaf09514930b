"""Extract chosen members of a (possibly remote, possibly ZIP64) zip archive, each CRC-checked and path-checked.

Over HTTP only the central directory and the chosen members' bytes are fetched, with Range requests; a server
without Range support gets the whole archive downloaded once, then read locally by the same code. Each member's
compressed bytes go to `<dest>.part` (resumable), are inflated to a temporary file, CRC-32 checked, then renamed:
a half-written file never carries its final name. Must not know which members a data set needs.
"""
import http.client
import logging
import os
import struct
import tempfile
import urllib.request
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from model.errors import DataError
from model.files import download

log = logging.getLogger(__name__)

EOCD = struct.Struct("<4sHHHHIIH")  # end of central directory record
ZIP64_LOCATOR = struct.Struct("<4sIQI")
ZIP64_EOCD = struct.Struct("<4sQHHIIQQQQ")
CENTRAL = struct.Struct("<4sHHHHHHIIIHHHHHII")
LOCAL = struct.Struct("<4sHHHHHIIIHH")
STORED, DEFLATED = 0, 8
TAIL = EOCD.size + 0xFFFF + ZIP64_LOCATOR.size  # the EOCD record, the longest comment and the ZIP64 locator
Checker = Callable[["Member", Path], None]  # vets one extracted member's file; raises DataError to refuse it


@dataclass(frozen=True)
class Member:
    """One file of the archive, as its central directory describes it. Sizes and offsets in bytes."""

    name: str
    method: int
    crc: int
    compressed_size: int
    size: int
    header_offset: int


class HttpSource:
    """An archive behind a URL, read with Range requests. Raises `RangeNotSupported` if the server ignores them."""

    def __init__(self, url: str, retries: int = download.RETRIES, retry_wait_s: float = download.RETRY_WAIT_S):
        self.url, self.retries, self.retry_wait_s = url, retries, retry_wait_s
        request = urllib.request.Request(url, headers={"Range": f"bytes=-{TAIL}"})
        try:
            with urllib.request.urlopen(request, timeout=download.TIMEOUT_S) as resp:
                if resp.status != 206:
                    raise download.RangeNotSupported(url)
                total = resp.headers.get("Content-Range", "").rpartition("/")[2]
                if not total.isdigit():
                    raise DataError(f"{url}: Content-Range {resp.headers.get('Content-Range')!r} gives no size")
                self.size = int(total)
                try:
                    self.tail = resp.read()
                except http.client.IncompleteRead:
                    self.tail = b""
                if len(self.tail) != min(TAIL, self.size):
                    raise DataError(f"{url}: connection cut while reading the archive's end; run again")
        except OSError as err:  # URLError, HTTPError, connection errors
            raise DataError(f"{url}: cannot read the archive's end ({err})") from None

    def read(self, start: int, stop: int) -> bytes:
        """Bytes `[start, stop)` of the archive (small reads: headers, the central directory)."""
        if start >= self.size - len(self.tail):
            offset = start - (self.size - len(self.tail))
            return self.tail[offset:offset + stop - start]
        with tempfile.TemporaryDirectory() as tmp:
            part = download.fetch_range(self.url, Path(tmp) / "range.part", start, stop, retries=self.retries,
                                        retry_wait_s=self.retry_wait_s)
            return part.read_bytes()

    def fetch(self, start: int, stop: int, part: Path) -> None:
        """Make `part` hold bytes `[start, stop)`, resuming what it already holds."""
        download.fetch_range(self.url, part, start, stop, retries=self.retries, retry_wait_s=self.retry_wait_s)


class FileSource:
    """A local archive file."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.size = self.path.stat().st_size

    def read(self, start: int, stop: int) -> bytes:
        with open(self.path, "rb") as f:
            f.seek(start)
            return f.read(stop - start)

    def fetch(self, start: int, stop: int, part: Path) -> None:
        """Copy bytes `[start, stop)` of the archive to `part`."""
        with open(self.path, "rb") as src, open(part, "wb") as out:
            src.seek(start)
            remaining = stop - start
            while remaining and (chunk := src.read(min(download.CHUNK, remaining))):
                out.write(chunk)
                remaining -= len(chunk)


def central_directory(source, where: str) -> list[Member]:
    """Parse the archive's central directory (ZIP64 aware) → its file members (directories left out).

    Any damage (a record cut short, an offset or size outside the archive, a name that does not decode, a ZIP64
    extra field too short for the values it replaces) raises `DataError` naming `where` and the byte.
    """
    try:
        return _central_directory(source, where)
    except (struct.error, IndexError, ValueError, OverflowError) as err:  # a check below missed a damaged record
        raise DataError(f"{where}: corrupted central directory ({type(err).__name__}: {err})") from None


def _central_directory(source, where: str) -> list[Member]:
    tail_start = max(0, source.size - TAIL)
    tail = source.read(tail_start, source.size)
    pos = tail.rfind(b"PK\x05\x06")
    if pos < 0 or pos + EOCD.size > len(tail):
        raise DataError(f"{where}: not a zip archive (no end-of-central-directory record)")
    _, _, _, _, count, cd_size, cd_offset, _ = EOCD.unpack_from(tail, pos)
    if 0xFFFF == count or 0xFFFFFFFF in (cd_size, cd_offset):
        loc = pos - ZIP64_LOCATOR.size
        if loc < 0 or tail[loc:loc + 4] != b"PK\x06\x07":
            raise DataError(f"{where}: ZIP64 archive without a ZIP64 end-of-central-directory locator")
        eocd64_offset = ZIP64_LOCATOR.unpack_from(tail, loc)[2]
        if eocd64_offset + ZIP64_EOCD.size > source.size:
            raise DataError(f"{where}: ZIP64 end-of-central-directory offset {eocd64_offset} is past the archive's "
                            f"{source.size} bytes")
        record = source.read(eocd64_offset, eocd64_offset + ZIP64_EOCD.size)
        if len(record) != ZIP64_EOCD.size or record[:4] != b"PK\x06\x06":
            raise DataError(f"{where}: bad ZIP64 end-of-central-directory record at byte {eocd64_offset}")
        count, cd_size, cd_offset = ZIP64_EOCD.unpack(record)[7:10]
    if cd_offset + cd_size > source.size:
        raise DataError(f"{where}: central directory (bytes {cd_offset}..{cd_offset + cd_size}) is past the "
                        f"archive's {source.size} bytes")
    data = source.read(cd_offset, cd_offset + cd_size)
    members, pos = [], 0
    for _ in range(count):
        at = f"{where}: central directory entry at byte {cd_offset + pos}"
        if data[pos:pos + 4] != b"PK\x01\x02" or pos + CENTRAL.size > len(data):
            raise DataError(f"{where}: corrupted central directory at byte {cd_offset + pos}")
        fields = CENTRAL.unpack_from(data, pos)
        flags, method, crc, csize, size = fields[3], fields[4], fields[7], fields[8], fields[9]
        name_len, extra_len, comment_len, offset = fields[10], fields[11], fields[12], fields[16]
        end = pos + CENTRAL.size + name_len + extra_len + comment_len
        if end > len(data):
            raise DataError(f"{at}: name, extra field and comment run past the directory's end")
        raw_name = data[pos + CENTRAL.size:pos + CENTRAL.size + name_len]
        try:
            name = raw_name.decode("utf-8" if flags & 0x800 else "cp437")
        except UnicodeDecodeError:
            raise DataError(f"{at}: member name {raw_name!r} is flagged UTF-8 but is not") from None
        extra = data[pos + CENTRAL.size + name_len:pos + CENTRAL.size + name_len + extra_len]
        size, csize, offset = _zip64_values(extra, size, csize, offset, f"{at} ({name})")
        if offset + csize > source.size:
            raise DataError(f"{at}: member {name} (bytes {offset}..{offset + csize}) is past the archive's "
                            f"{source.size} bytes")
        if not name.endswith("/"):
            members.append(Member(name, method, crc, csize, size, offset))
        pos = end
    return members


def _zip64_values(extra: bytes, size: int, csize: int, offset: int, where: str) -> tuple[int, int, int]:
    """Replace the 0xFFFFFFFF placeholders by the 64-bit values of the ZIP64 extra field (id 0x0001); an extra
    field cut short, or a ZIP64 field without a value for each placeholder, raises `DataError`."""
    pos = 0
    while pos + 4 <= len(extra):
        tag, length = struct.unpack_from("<HH", extra, pos)
        if pos + 4 + length > len(extra):
            raise DataError(f"{where}: extra field 0x{tag:04x} announces {length} bytes, {len(extra) - pos - 4} left")
        if tag == 0x0001:
            values = list(struct.unpack_from(f"<{length // 8}Q", extra, pos + 4))
            needed = [size, csize, offset].count(0xFFFFFFFF)
            if len(values) < needed:
                raise DataError(f"{where}: ZIP64 extra field holds {len(values)} values, {needed} needed")
            if size == 0xFFFFFFFF:
                size = values.pop(0)
            if csize == 0xFFFFFFFF:
                csize = values.pop(0)
            if offset == 0xFFFFFFFF:
                offset = values.pop(0)
        pos += 4 + length
    if 0xFFFFFFFF in (size, csize, offset):
        raise DataError(f"{where}: 32-bit placeholder size or offset without a ZIP64 extra field to replace it")
    return size, csize, offset


def safe_destination(root: Path, name: str) -> Path:
    """`root / name`, or `DataError` if the member name is absolute or escapes `root` (`..`, backslashes, drives)."""
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or "\\" in name or ":" in name or not name.strip("/"):
        raise DataError(f"archive member {name!r}: path escapes the target folder {root}; refusing to extract")
    dest = (root / path).resolve()
    if not dest.is_relative_to(root.resolve()):
        raise DataError(f"archive member {name!r}: resolves to {dest}, outside {root}; refusing to extract")
    return root / path


def extract_member(source, member: Member, root: Path, where: str, check: Checker | None = None) -> Path:
    """Fetch, inflate and CRC-check one member into `root`; return its path. An existing file with the right CRC
    is kept; one that differs raises `DataError`. The member is never inflated past its declared size, and a folder
    that cannot be written (a full disk, read only) raises `DataError` naming the file.

    check: called as `check(member, path)` on the inflated file before it gets its final name (and on a file kept
    from an earlier run); it raises `DataError` to refuse the member (e.g. a pinned SHA-256 that differs)."""
    dest = safe_destination(root, member.name)
    try:
        return _extract_member(source, member, dest, where, check or (lambda member, path: None))
    except OSError as err:
        raise DataError(f"{err.filename or dest}: cannot write archive member {member.name} "
                        f"({err.strerror or err}); free space or choose another --data-root, then run again") from None


def _extract_member(source, member: Member, dest: Path, where: str, check: Checker) -> Path:
    if dest.exists():
        if dest.stat().st_size == member.size and _crc_of(dest) == member.crc:
            check(member, dest)
            return dest
        raise DataError(f"{dest}: exists but differs from archive member {member.name}; delete it to fetch again")
    if member.method not in (STORED, DEFLATED):
        raise DataError(f"{where}: member {member.name} uses compression method {member.method}; "
                        f"expected 0 (stored) or 8 (deflate)")
    header = source.read(member.header_offset, member.header_offset + LOCAL.size)
    if len(header) != LOCAL.size or header[:4] != b"PK\x03\x04":
        raise DataError(f"{where}: no local header for member {member.name} at byte {member.header_offset}")
    name_len, extra_len = LOCAL.unpack(header)[9:11]
    start = member.header_offset + LOCAL.size + name_len + extra_len
    if start + member.compressed_size > source.size:
        raise DataError(f"{where}: member {member.name}'s data (bytes {start}..{start + member.compressed_size}) "
                        f"is past the archive's {source.size} bytes")
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    source.fetch(start, start + member.compressed_size, part)
    tmp = dest.with_name(f".{dest.name}.tmp")
    try:
        crc, size = _inflate(part, tmp, member.method, member.size, where, member.name)
        if (crc, size) != (member.crc, member.size):
            part.unlink()
            raise DataError(f"{where}: member {member.name} has CRC-32 {crc:08x} and {size} bytes, expected "
                            f"{member.crc:08x} and {member.size} bytes (corrupted; run again to fetch it anew)")
        check(member, tmp)
        os.replace(tmp, dest)
    except zlib.error as err:
        part.unlink()
        raise DataError(f"{where}: member {member.name} does not inflate ({err}); run again to fetch it anew") from None
    except DataError:
        part.unlink(missing_ok=True)
        raise
    finally:
        tmp.unlink(missing_ok=True)
    part.unlink()
    return dest


def _inflate(src: Path, dest: Path, method: int, max_size: int, where: str, name: str) -> tuple[int, int]:
    """Decompress `src` (raw deflate or stored) into `dest`; return (CRC-32, size) of the output. Output past
    `max_size` bytes (the size the directory declares) is never written: `DataError` (a zip bomb or damage)."""
    crc, size = 0, 0
    inflater = zlib.decompressobj(-15) if method == DEFLATED else None
    with open(src, "rb") as f, open(dest, "wb") as out:

        def emit(data: bytes) -> None:
            nonlocal crc, size
            if size + len(data) > max_size:
                raise DataError(f"{where}: member {name} inflates to more than the {max_size} bytes its directory "
                                "entry declares; refusing it (damaged or a zip bomb)")
            crc, size = zlib.crc32(data, crc), size + len(data)
            out.write(data)

        while chunk := f.read(download.CHUNK):
            if inflater is None:
                emit(chunk)
                continue
            while chunk:  # at most max_size - size + 1 bytes out per call: enough to see the bound crossed
                emit(inflater.decompress(chunk, max_size - size + 1))
                chunk = inflater.unconsumed_tail
        if inflater:
            emit(inflater.flush())
    return crc, size


def _crc_of(path: Path) -> int:
    crc = 0
    with open(path, "rb") as f:
        while chunk := f.read(download.CHUNK):
            crc = zlib.crc32(chunk, crc)
    return crc


def extract(url: str, root: str | Path, select: Callable[[str], bool], *, archive: Path | None = None,
            retries: int = download.RETRIES, retry_wait_s: float = download.RETRY_WAIT_S,
            check: Checker | None = None) -> list[tuple[Member, Path]]:
    """Extract the members of the zip at `url` whose name satisfies `select` into `root`; return (member, path)s.

    With Range support only the central directory and those members are fetched; otherwise the whole archive is
    downloaded to `archive` (default `root/<archive name>`) first and kept for later runs. Every chosen name is
    checked for path escape before anything is written; `check` vets each member (see `extract_member`).
    """
    root = Path(root)
    try:
        source, where = HttpSource(url, retries, retry_wait_s), url
    except download.RangeNotSupported:
        archive = Path(archive) if archive else root / Path(url.rstrip("/")).name
        log.warning("%s: server ignores Range requests; downloading the whole archive to %s", url, archive)
        download.fetch_file(url, archive, retries=retries, retry_wait_s=retry_wait_s)
        source, where = FileSource(archive), str(archive)
    chosen = [m for m in central_directory(source, where) if select(m.name)]
    if not chosen:
        raise DataError(f"{where}: no archive member matches what is needed")
    for member in chosen:
        safe_destination(root, member.name)
    paths = []
    for i, member in enumerate(chosen, 1):
        log.info("[%d/%d] %s (%d bytes)", i, len(chosen), member.name, member.compressed_size)
        paths.append((member, extract_member(source, member, root, where, check)))
    return paths
