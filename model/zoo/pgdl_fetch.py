"""Which members of the PGDL public archive the paper needs, and fetching them into `<data_root>/pgdl/`.

Only task1_v4 models 20–23 and 148–151 (config, initial and trained weights), the task's dataset shards and
`reference_data/task1_v4/model_configs.json` are fetched (a few hundred MB of the 8.8 GB archive), over https. A
`MANIFEST.json` records each member's size, CRC-32 and SHA-256 and the source URL. Must not parse the files (the loader
does).

Three checks, each against something else. The CRC-32 the archive gives each member catches damage in transit or
on disk (a cut connection, a flipped bit), not a substitution: whoever serves the archive can change a member and its
CRC together. A SHA-256 pinned in a pin file (the repository's `model/zoo/pgdl_sha256.json`, empty while no
checksums are published, or a file the user names) catches a substituted member on every fetch. Where a member has
no pin, its SHA-256 is trusted on first use: recorded under the data root in `<data_root>/pgdl/sha256_recorded.json`
(never inside the package, which may be read only) and logged, then checked on every later fetch, resume and
re-extraction, so the archive cannot change under a data folder unnoticed. Pins win over the record. A member whose
SHA-256 differs is refused (`DataError`, one line naming it) before it gets its final name, and never kept.
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
RECORD = "sha256_recorded.json"  # under <data_root>/pgdl/: the SHA-256s trusted on first use, same format
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


def read_pins(path: Path = PINS, remedy: str = "restore it from git") -> dict[str, str]:
    """The {member name: SHA-256} of pin file `path` ({} when it holds none); a damaged file raises `DataError`."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: pin file not found; expected a JSON file like {PINS.name}")
    record = _read_json(path)
    if not isinstance(record.get("sha256"), dict) or not all(
            isinstance(v, str) for v in record["sha256"].values()):
        raise DataError(f"{path}: not a pin file; expected a JSON object with a 'sha256' object of member name → hex "
                        f"digest ({remedy})")
    return {name: digest.lower() for name, digest in record["sha256"].items()}


class Checksums:
    """Checks each extracted member's SHA-256: against its pin when one of `pin_files` has it (later files win),
    else against the record under the data root, else records it there (trust on first use)."""

    def __init__(self, root: Path, url: str, pin_files):
        self.pinned = {}  # member name → (digest, pin file)
        for path in pin_files:
            self.pinned.update({name: (digest, Path(path)) for name, digest in read_pins(path).items()})
        self.record_path = root / RECORD
        self.recorded = (read_pins(self.record_path, f"delete it and {root} to trust the archive anew")
                         if self.record_path.exists() else {})
        self.url = _read_json(self.record_path).get("url", url)  # where the record's first members came from
        self.digests: dict[str, str] = {}  # member name → SHA-256, of this fetch
        self.counts = {"pinned": 0, "recorded earlier": 0, "trusted on first use": 0}

    def __call__(self, member, path: Path) -> None:
        got = sha256_of(path)
        if member.name in self.pinned:
            want, source = self.pinned[member.name]
            if got != want:
                raise DataError(f"{member.name}: SHA-256 {got}, expected {want} (pinned in {source}): the archive "
                                "served is not the one pinned; refusing it (check --url)")
            self.counts["pinned"] += 1
        elif member.name in self.recorded:
            want = self.recorded[member.name]
            if got != want:
                raise DataError(f"{member.name}: SHA-256 {got}, expected {want} (recorded on first use in "
                                f"{self.record_path}): the archive served differs from the one first fetched; "
                                "refusing it (check --url)")
            self.counts["recorded earlier"] += 1
        else:
            self.recorded[member.name] = got
            write_json(self.record_path, {
                "about": "SHA-256 of the PGDL archive members first fetched into this folder, which no pin file "
                         "pinned (trust on first use); checked on every later fetch (model/zoo/pgdl_fetch.py). "
                         "Compare them with a source you trust; a pin file given with --pins wins over them.",
                "url": self.url, "sha256": dict(sorted(self.recorded.items()))})
            log.info("%s: no pinned SHA-256; trusted on first use: %s (recorded in %s)", member.name, got,
                     self.record_path)
            self.counts["trusted on first use"] += 1
        self.digests[member.name] = got

    def summary(self) -> str:
        return ", ".join(f"{n} {what}" for what, n in self.counts.items() if n)


def fetch(data_root: str | Path, url: str = PUBLIC_URL, task: str = TASK, models=PAPER_MODELS, *,
          retries: int = download.RETRIES, retry_wait_s: float = download.RETRY_WAIT_S, pins=(PINS,)) -> list[Path]:
    """Fetch the needed members into `<data_root>/pgdl/` (resumable; files already there with the right CRC are
    kept), each checked by `Checksums` before it gets its final name (and when kept from an earlier run), and write
    `MANIFEST.json`; return the member paths. Raises `DataError` if a model's files are absent, a pin file is
    damaged or a SHA-256 differs from its pin or record.

    pins: the pin files, later ones winning (default: the repository's).
    """
    root = Path(data_root) / "pgdl"
    checksums = Checksums(root, url, pins)
    extracted = remote_zip.extract(url, root, lambda name: wanted(name, task, models), retries=retries,
                                   retry_wait_s=retry_wait_s, check=checksums)
    names = {member.name for member, _ in extracted}
    expected = [f"input_data/{task}/model_{m}/{f}" for m in models for f in MODEL_FILES]
    expected += [f"reference_data/{task}/model_configs.json"]
    missing = [n for n in expected if n not in names]
    if missing or not any(n.startswith(f"input_data/{task}/dataset_1/train/") for n in names):
        raise DataError(f"{url}: archive lacks {missing or ['the training shards']} (expected the PGDL public data)")
    members = {m.name: {"bytes": m.size, "crc32": f"{m.crc:08x}", "sha256": checksums.digests[m.name]}
               for m, _ in extracted}
    write_json(root / "MANIFEST.json", {"url": url, "members": members})
    log.info("%d members in %s; SHA-256: %s", len(extracted), root, checksums.summary())
    return [path for _, path in extracted]
