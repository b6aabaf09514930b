"""IDX file reader (the MNIST format): big-endian magic, dimension sizes, then raw unsigned bytes.

Reads plain or gzip-compressed files into NumPy. Only the unsigned-byte type (0x08) is supported, the one MNIST
uses. Must not know about MNIST splits or scaling.
"""
import gzip
import struct
from pathlib import Path

import numpy as np

from model.errors import DataError

UBYTE = 0x08


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (`.gz` or plain) → uint8 array of shape `(count, *dims)`.

    Raises `DataError` naming the file when the magic, the type code or the length is wrong.
    """
    path = Path(path)
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise DataError(f"{path}: file not found (expected an IDX file)") from None
    except (OSError, EOFError) as err:
        raise DataError(f"{path}: cannot read as {'gzip' if path.suffix == '.gz' else 'IDX'} ({err})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise DataError(f"{path}: not an IDX file (expected magic bytes 00 00 <type> <ndim>)")
    dtype_code, ndim = raw[2], raw[3]
    if dtype_code != UBYTE:
        raise DataError(f"{path}: IDX type code 0x{dtype_code:02x}, expected 0x08 (unsigned byte)")
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise DataError(f"{path}: IDX header truncated (ndim={ndim}, {len(raw)} bytes)")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    expected = int(np.prod(dims))
    if len(raw) - header != expected:
        raise DataError(f"{path}: IDX payload has {len(raw) - header} bytes, expected {expected} for shape {dims}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)
