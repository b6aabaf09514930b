"""Which members of the PGDL public archive the paper needs, and fetching them into `<data_root>/pgdl/`.

Only task1_v4 models 20–23 and 148–151 (config, initial and trained weights), the task's dataset shards and
`reference_data/task1_v4/model_configs.json` are fetched (a few hundred MB of the 8.8 GB archive), over https. A
`MANIFEST.json` records each member's size, CRC-32 and SHA-256 and the source URL. Must not parse the files (the loader
does).

The CRC-32s inside the archive only catch damage: whoever serves the archive can change a member and its CRC. So each
member is also checked against a SHA-256 pinned in the repository, `model/zoo/pgdl_sha256.json`, before it gets its
final name, on every fetch; a member with no pin or another hash is refused (`DataError`) and never kept. The pins are
recorded once, on a trusted network: `python scripts/download_pgdl.py --record-hashes` fetches as usual (CRC-checked),
writes each member's SHA-256 into that file, and the file is committed. Until then the file holds no pins and a fetch
stops at its first member, saying so.
"""
import hashlib
import json
import logging
from pathlib import Path

from model.atomic import write_json
from model.errors import DataError
from model.files import download, remote_zip

log = logging.getLogger(__name__)

PUBLIC_URL = "https://storage.googleapis.com/gresearch/pgdl/public_data.zip"
PINS = Path(__file__).with_name("pgdl_sha256.json")  # {"url": ..., "sha256": {member name: hex digest}}
TASK = "task1_v4"
PAPER_MODELS = (20, 21, 22, 23, 148, 149, 150, 151)
MODEL_FILES = ("config.json", "weights_init.hdf5")


def wanted(name: str, task: str = TASK, models=PAPER_MODELS) -> bool:
    """Whether archive member `name` is needed: the models' files, the task's `dataset_1/`, its reference data.

    Hidden files (`.DS_Store`) and `__MACOSX/` entries are never wanted.
    """
    parts = name.split("/")
    if any(p.startswith(".") and p not in (".", "..") for p in parts) or "__MACOSX" in parts:
        return False
    prefixes = [f"input_data/{task}/model_{m}/" for m in models] + [f"input_data/{task}/dataset_1/"]
    return name == f"reference_data/{task}/model_configs.json" or any(name.startswith(p) for p in prefixes)


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(download.CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _read_json(path: Path) -> dict:
    try:
        value = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def read_pins(path: Path = PINS) -> dict[str, str]:
    """The pinned {member name: SHA-256} of `path` ({} when it holds none); a damaged file raises `DataError`."""
    record = _read_json(path)
    if not isinstance(record.get("sha256"), dict) or not all(
            isinstance(v, str) for v in record["sha256"].values()):
        raise DataError(f"{path}: not a pin file; expected a JSON object with a 'sha256' object of member name → hex "
                        "digest (restore it from git)")
    return record["sha256"]


def check_pins(extracted, pinned: dict[str, str], pins_path: Path = PINS) -> None:
    """`DataError` unless every (member, file) of `extracted` has the SHA-256 pinned for it in `pinned`."""
    for member, path in extracted:
        want = pinned.get(member.name)
        if want is None:
            raise DataError(f"{member.name}: no pinned SHA-256 in {pins_path}, so the member cannot be trusted; on a "
                            "trusted network run `python scripts/download_pgdl.py --record-hashes` once and commit "
                            "that file")
        got = sha256_of(path)
        if got != want.lower():
            raise DataError(f"{member.name}: SHA-256 {got}, expected {want} (pinned in {pins_path}): the archive "
                            "served is not the one recorded; refusing it (delete the file if it was kept, check "
                            "--url)")


def fetch(data_root: str | Path, url: str = PUBLIC_URL, task: str = TASK, models=PAPER_MODELS, *,
          retries: int = download.RETRIES, retry_wait_s: float = download.RETRY_WAIT_S, pins: Path = PINS,
          record_hashes: bool = False) -> list[Path]:
    """Fetch the needed members into `<data_root>/pgdl/` (resumable; files already there with the right CRC are
    kept), each checked against its SHA-256 in `pins` before it gets its final name, and write `MANIFEST.json`;
    return the member paths. Raises `DataError` if a model's files are absent or a hash is missing or differs.

    record_hashes: do not check; write every member's SHA-256 into `pins` instead (first fetch on a trusted network).
    """
    root = Path(data_root) / "pgdl"
    pins = Path(pins)
    pinned = {} if record_hashes else read_pins(pins)
    hashes: dict[str, str] = {}

    def check(member, path):
        if record_hashes:
            hashes[member.name] = sha256_of(path)
        else:
            check_pins([(member, path)], pinned, pins)
            hashes[member.name] = pinned[member.name]

    extracted = remote_zip.extract(url, root, lambda name: wanted(name, task, models), retries=retries,
                                   retry_wait_s=retry_wait_s, check=check)
    names = {member.name for member, _ in extracted}
    expected = [f"input_data/{task}/model_{m}/{f}" for m in models for f in MODEL_FILES]
    expected += [f"reference_data/{task}/model_configs.json"]
    missing = [n for n in expected if n not in names]
    if missing or not any(n.startswith(f"input_data/{task}/dataset_1/train/") for n in names):
        raise DataError(f"{url}: archive lacks {missing or ['the training shards']} (expected the PGDL public data)")
    if record_hashes:
        old = _read_json(pins)
        write_json(pins, {"about": "SHA-256 of the PGDL public archive members the paper uses, recorded by "
                                   "`python scripts/download_pgdl.py --record-hashes` on a trusted network; checked "
                                   "on every fetch (model/zoo/pgdl_fetch.py)",
                          "url": url, "sha256": {**(old.get("sha256") or {}), **hashes}})
        log.info("%s: recorded the SHA-256 of %d members; commit it", pins, len(hashes))
    members = {m.name: {"bytes": m.size, "crc32": f"{m.crc:08x}", "sha256": hashes[m.name]} for m, _ in extracted}
    write_json(root / "MANIFEST.json", {"url": url, "members": members})
    log.info("%d members in %s", len(extracted), root)
    return [path for _, path in extracted]
