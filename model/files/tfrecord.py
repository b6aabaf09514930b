"""TFRecord shards of `tf.train.Example{inputs: float32 tensor, output: int32 scalar}` (the PGDL data format).

Writing is pure Python (framing with masked CRC-32C, a minimal protobuf encoder), so test fixtures need no
TensorFlow; reading goes through `tf.data`, which checks the framing CRCs. Must not know about splits or models.
"""
import re
import struct
from pathlib import Path

import numpy as np

from model.atomic import write_bytes
from model.errors import DataError

BATCH = 1024


def _crc32c_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli) of `data`."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def masked_crc32c(data: bytes) -> int:
    """The TFRecord CRC: crc32c rotated right by 15 bits plus 0xa282ead8 (mod 2³²)."""
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def frame(record: bytes) -> bytes:
    """One TFRecord: uint64 length, masked CRC of the length, data, masked CRC of the data (little-endian)."""
    length = struct.pack("<Q", len(record))
    return length + struct.pack("<I", masked_crc32c(length)) + record + struct.pack("<I", masked_crc32c(record))


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field (wire type 2)."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def tensor_proto(array: np.ndarray) -> bytes:
    """A serialized `TensorProto` as `tf.io.serialize_tensor` writes it, for float32 or int32 arrays."""
    dtypes = {np.dtype(np.float32): 1, np.dtype(np.int32): 3}
    array = np.asarray(array)
    if array.dtype not in dtypes:
        raise TypeError(f"tensor_proto: dtype {array.dtype}, expected float32 or int32")
    shape = b"".join(_field(2, _varint(1 << 3) + _varint(d)) for d in array.shape)
    data = np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<")).tobytes()
    return _varint(1 << 3) + _varint(dtypes[array.dtype]) + _field(2, shape) + _field(4, data)


def example(x: np.ndarray, y: int) -> bytes:
    """A serialized `tf.train.Example` with features `inputs` (float32 tensor) and `output` (int32 scalar)."""

    def feature(key: str, value: bytes) -> bytes:
        bytes_list = _field(1, _field(1, value))  # Feature{bytes_list{value}}
        return _field(1, _field(1, key.encode()) + _field(2, bytes_list))  # Features.feature map entry

    body = feature("inputs", tensor_proto(np.asarray(x, np.float32))) + feature("output",
                                                                                tensor_proto(np.int32(y)))
    return _field(1, body)  # Example{features}


def write_shard(path: str | Path, xs: np.ndarray, ys: np.ndarray) -> None:
    """Write examples `(xs[i], ys[i])` to a TFRecord file (atomically)."""
    write_bytes(path, b"".join(frame(example(x, int(y))) for x, y in zip(xs, ys)))


def _first_line(message: str) -> str:
    return re.sub(r"\{\{.*?\}\}\s*", "", message).splitlines()[0].strip()


def read_shard(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read one shard through `tf.data` → (x float32 `(n, *shape)`, y int32 `(n,)`).

    A truncated or corrupted shard, or records that are not the expected Example, raise `DataError` naming the file.
    """
    import tensorflow as tf

    spec = {"inputs": tf.io.FixedLenFeature([], tf.string), "output": tf.io.FixedLenFeature([], tf.string)}

    def parse(record):
        features = tf.io.parse_single_example(record, spec)
        return tf.io.parse_tensor(features["inputs"], tf.float32), tf.io.parse_tensor(features["output"], tf.int32)

    xs, ys = [], []
    try:
        for x, y in tf.data.TFRecordDataset(str(path)).map(parse).batch(BATCH).as_numpy_iterator():
            if y.ndim != 1:
                raise DataError(f"{path}: 'output' of shape {y.shape[1:]}, expected a scalar per record")
            xs.append(x)
            ys.append(y)
    except tf.errors.OpError as err:
        raise DataError(f"{path}: not a readable TFRecord of Example{{inputs: float32, output: int32}} with one "
                        f"input shape ({_first_line(err.message)})") from None
    if not xs:
        raise DataError(f"{path}: no records (expected at least one Example)")
    return np.concatenate(xs).astype(np.float32), np.concatenate(ys).astype(np.int32)
