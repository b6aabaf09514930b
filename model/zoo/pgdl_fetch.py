"""Which members of the PGDL public archive the paper needs, and fetching them into `<data_root>/pgdl/`.

Only task1_v4 models 20–23 and 148–151 (config, initial and trained weights), the task's dataset shards and
`reference_data/task1_v4/model_configs.json` are fetched (a few hundred MB of the 8.8 GB archive). A `MANIFEST.json`
records each member's size and CRC-32 and the source URL. Must not parse the files (the loader does).
"""
import logging
from pathlib import Path

from model.atomic import write_json
from model.errors import DataError
from model.files import download, remote_zip

log = logging.getLogger(__name__)

PUBLIC_URL = "http://storage.googleapis.com/gresearch/pgdl/public_data.zip"
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


def fetch(data_root: str | Path, url: str = PUBLIC_URL, task: str = TASK, models=PAPER_MODELS, *,
          retries: int = download.RETRIES, retry_wait_s: float = download.RETRY_WAIT_S) -> list[Path]:
    """Fetch the needed members into `<data_root>/pgdl/` (resumable; files already there with the right CRC are
    kept) and write `MANIFEST.json`; return the member paths. Raises `DataError` if a model's files are absent."""
    root = Path(data_root) / "pgdl"
    extracted = remote_zip.extract(url, root, lambda name: wanted(name, task, models), retries=retries,
                                   retry_wait_s=retry_wait_s)
    names = {member.name for member, _ in extracted}
    expected = [f"input_data/{task}/model_{m}/{f}" for m in models for f in MODEL_FILES]
    expected += [f"reference_data/{task}/model_configs.json"]
    missing = [n for n in expected if n not in names]
    if missing or not any(n.startswith(f"input_data/{task}/dataset_1/train/") for n in names):
        raise DataError(f"{url}: archive lacks {missing or ['the training shards']} (expected the PGDL public data)")
    members = {m.name: {"bytes": m.size, "crc32": f"{m.crc:08x}"} for m, _ in extracted}
    write_json(root / "MANIFEST.json", {"url": url, "members": members})
    log.info("%d members in %s", len(extracted), root)
    return [path for _, path in extracted]
