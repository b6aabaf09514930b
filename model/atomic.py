"""Atomic writes: a temporary file in the target's folder, then `os.replace`.

A reader never sees a half-written file under its final name, and an interrupted write leaves the old file intact.
The file gets the permissions the process's umask gives a new file (`mkstemp`'s 0600 would hide finished runs from
another user or container sharing the folder). An `OSError` (a full disk, a read-only folder) always names the file
being written, so the one-line error (`model.cli`) says which file. `write_many` writes many files with one sync in
place of one `fsync` per file (10,000 task specs: benchmarks/README.md).
"""
import json
import os
import tempfile
from pathlib import Path


def umask() -> int:
    """The process's umask, read without changing it (Linux `/proc/self/status`; elsewhere set and restored)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def new_file_mode() -> int:
    """The mode `open(path, "w")` would give a new file: 0666 less the umask."""
    return 0o666 & ~umask()


def name_the_file(err: OSError, path: Path) -> None:
    """Raise `err` again, as the same type with `path` as its file name when it names none or only our temporary
    file (what `f.write` and `os.replace` raise), so that the one-line error says which file could not be written."""
    if err.filename is not None and not Path(str(err.filename)).name.startswith(f".{path.name}."):
        raise err
    raise type(err)(err.errno, err.strerror or str(err), str(path)) from err


def _temporary(path: Path, data: bytes, sync: bool) -> str:
    """`data` in a new temporary file beside `path` (fsync'd if `sync`); its name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), new_file_mode())
            f.write(data)
            f.flush()
            if sync:
                os.fsync(f.fileno())
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return tmp


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write `data` to `path` atomically (parents created); return the path. An `OSError` names `path`."""
    path = Path(path)
    try:
        tmp = _temporary(path, data, sync=True)
        try:
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as err:
        name_the_file(err, path)
    return path


def write_many(files: dict) -> list[Path]:
    """Write each `{path: bytes}` atomically, with one `os.sync()` before the renames (no file appears under its
    name before its data is on disk) and one after (the renames are), in place of an `fsync` per file and folder.
    All temporary files are written before the first rename, so an error while writing (a full disk) leaves every
    target as it was; each rename is atomic. An `OSError` names the file."""
    if not files:
        return []
    temporary = {}
    try:
        for path, data in files.items():
            path = Path(path)
            try:
                temporary[path] = _temporary(path, data, sync=False)
            except OSError as err:
                name_the_file(err, path)
        os.sync()
        for path in list(temporary):
            try:
                os.replace(temporary[path], path)
            except OSError as err:
                name_the_file(err, path)
            del temporary[path]
        os.sync()
    finally:
        for tmp in temporary.values():
            Path(tmp).unlink(missing_ok=True)
    return [Path(p) for p in files]


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write UTF-8 `text` to `path` atomically."""
    return write_bytes(path, text.encode("utf-8"))


def json_bytes(obj) -> bytes:
    """`obj` as the bytes `write_json` writes: indented, key-sorted JSON with a final newline, UTF-8."""
    return (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode("utf-8")


def write_json(path: str | os.PathLike, obj) -> Path:
    """Write `obj` as indented, key-sorted JSON (with a final newline) to `path` atomically."""
    return write_bytes(path, json_bytes(obj))
