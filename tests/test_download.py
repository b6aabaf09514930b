"""Resumable HTTP downloads and zip central-directory reading, against a loopback server started here."""
import hashlib
import struct
import zipfile
import zlib

import pytest
from download_server import LoopbackServer

from model.errors import DataError
from model.files import download, remote_zip

PAYLOAD = bytes(range(256)) * 400  # 102,400 bytes
MD5 = hashlib.md5(PAYLOAD).hexdigest()


def test_whole_file_with_md5(tmp_path):
    with LoopbackServer({"/f.bin": PAYLOAD}) as server:
        path = download.fetch_file(server.url + "/f.bin", tmp_path / "f.bin", md5=MD5)
    assert path.read_bytes() == PAYLOAD
    assert not (tmp_path / "f.bin.part").exists()


def test_cut_connection_resumes_with_range(tmp_path):
    with LoopbackServer({"/f.bin": PAYLOAD}, cuts={"/f.bin": {0: 30000, 30000: 20000}}) as server:
        download.fetch_file(server.url + "/f.bin", tmp_path / "f.bin", md5=MD5, retry_wait_s=0)
    assert (tmp_path / "f.bin").read_bytes() == PAYLOAD
    assert [entry[1] for entry in server.log] == [None, "bytes=30000-", "bytes=50000-"]
    assert server.bytes_sent("/f.bin") == len(PAYLOAD)


def test_interrupted_download_leaves_only_part_file_then_resumes(tmp_path):
    dest = tmp_path / "f.bin"
    with LoopbackServer({"/f.bin": PAYLOAD}, cuts={"/f.bin": {0: 40000, 40000: 0}}) as server:
        with pytest.raises(DataError, match="download failed after 1 attempt "):  # progress, then none
            download.fetch_file(server.url + "/f.bin", dest, md5=MD5, retries=0, retry_wait_s=0)
        assert not dest.exists()
        assert (tmp_path / "f.bin.part").stat().st_size == 40000
        download.fetch_file(server.url + "/f.bin", dest, md5=MD5, retry_wait_s=0)  # a later run resumes
    assert dest.read_bytes() == PAYLOAD
    assert server.log[-1][1] == "bytes=40000-" and server.log[-1][3] == len(PAYLOAD) - 40000


def test_server_without_range_restarts_the_file(tmp_path):
    (tmp_path / "f.bin.part").write_bytes(PAYLOAD[:1000])
    with LoopbackServer({"/f.bin": PAYLOAD}, ranges=False) as server:
        download.fetch_file(server.url + "/f.bin", tmp_path / "f.bin", md5=MD5)
    assert (tmp_path / "f.bin").read_bytes() == PAYLOAD


def test_md5_mismatch_and_http_errors(tmp_path):
    with LoopbackServer({"/f.bin": PAYLOAD}) as server:
        with pytest.raises(DataError, match=f"md5 {MD5}, expected 0+"):
            download.fetch_file(server.url + "/f.bin", tmp_path / "f.bin", md5="0" * 32)
        assert not (tmp_path / "f.bin").exists() and not (tmp_path / "f.bin.part").exists()
        with pytest.raises(DataError, match="HTTP 404"):
            download.fetch_file(server.url + "/missing.bin", tmp_path / "m.bin")
    (tmp_path / "kept.bin").write_bytes(b"other")
    with pytest.raises(DataError, match="kept.bin: exists but its md5"):
        download.fetch_file("http://127.0.0.1:9/none", tmp_path / "kept.bin", md5=MD5)


def _zip(path, members, method=zipfile.ZIP_DEFLATED):
    with zipfile.ZipFile(path, "w", method) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def test_central_directory_matches_zipfile(tmp_path):
    archive = _zip(tmp_path / "a.zip", {"a/x.txt": b"x" * 1000, "b/y.bin": PAYLOAD, "c/": b""})
    with LoopbackServer({"/a.zip": archive.read_bytes()}) as server:
        members = remote_zip.central_directory(remote_zip.HttpSource(server.url + "/a.zip"), "a.zip")
    infos = [i for i in zipfile.ZipFile(archive).infolist() if not i.is_dir()]
    assert [(m.name, m.crc, m.size, m.compressed_size) for m in members] == \
        [(i.filename, i.CRC, i.file_size, i.compress_size) for i in infos]


def _zip64_archive(name: bytes, data: bytes) -> bytes:
    """One stored member with 64-bit sizes and offset in a ZIP64 extra field, and the ZIP64 end records."""
    crc = zlib.crc32(data)
    local = struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", 45, 0, 0, 0, 0, crc, len(data), len(data), len(name), 0)
    extra = struct.pack("<HHQQQ", 1, 24, len(data), len(data), 0)
    central = struct.pack("<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", 45, 45, 0, 0, 0, 0, crc, 0xFFFFFFFF, 0xFFFFFFFF,
                          len(name), len(extra), 0, 0, 0, 0, 0xFFFFFFFF) + name + extra
    cd_offset = len(local) + len(name) + len(data)
    eocd64 = struct.pack("<4sQHHIIQQQQ", b"PK\x06\x06", 44, 45, 45, 0, 0, 1, 1, len(central), cd_offset)
    locator = struct.pack("<4sIQI", b"PK\x06\x07", 0, cd_offset + len(central), 1)
    eocd = struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    return local + name + data + central + eocd64 + locator + eocd


def test_zip64_records_and_extra_field(tmp_path):
    archive = tmp_path / "z64.zip"
    archive.write_bytes(_zip64_archive(b"dir/big.bin", PAYLOAD))
    assert zipfile.ZipFile(archive).read("dir/big.bin") == PAYLOAD  # the stdlib agrees the archive is valid
    with LoopbackServer({"/z64.zip": archive.read_bytes()}) as server:
        extracted = remote_zip.extract(server.url + "/z64.zip", tmp_path / "out", lambda name: True)
    [(member, path)] = extracted
    assert (member.name, member.size, member.header_offset) == ("dir/big.bin", len(PAYLOAD), 0)
    assert path.read_bytes() == PAYLOAD


@pytest.mark.parametrize("name", ["../evil", "/etc/passwd", "a/../../evil", "a\\..\\evil", "C:/evil", "a/.."])
def test_escaping_member_names_are_refused(tmp_path, name):
    with pytest.raises(DataError, match="escapes the target folder"):
        remote_zip.safe_destination(tmp_path, name)


def test_safe_member_name(tmp_path):
    assert remote_zip.safe_destination(tmp_path, "a/b/c.txt") == tmp_path / "a" / "b" / "c.txt"


def test_cut_while_reading_the_archive_end_is_a_clear_error(tmp_path):
    data = _zip(tmp_path / "a.zip", {"b/y.bin": PAYLOAD}, zipfile.ZIP_STORED).read_bytes()
    with LoopbackServer({"/a.zip": data}, cuts={"/a.zip": {len(data) - remote_zip.TAIL: 100}}) as server:
        with pytest.raises(DataError, match="connection cut while reading the archive's end; run again"):
            remote_zip.extract(server.url + "/a.zip", tmp_path / "out", lambda name: True)
