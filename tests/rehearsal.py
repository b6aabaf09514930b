#!/usr/bin/env python
"""Rehearse `make reproduce` end to end, offline: the same Makefile recipe against loopback mirrors this starts.

Not a test module (`make rehearsal` runs it; tests/test_rehearsal.py asserts on what it leaves). It writes the
mirrors' files once into `<out>/mirror/` (kept, so a second rehearsal serves the same bytes): the four MNIST IDX
`.gz` files of the tests' generator (600 training and 100 test images of noise, named and served as the public
mirrors serve them, with the `--expect` file prepare_mnist.py checks them against) and the synthetic PGDL replica
archive (`model/zoo/pgdl_replica.py`). Then, for each profile, it serves them on 127.0.0.1 (tests/download_server.py)
and runs `make reproduce` with only variables changed: DATA and EXPERIMENTS under `<out>`, MNIST_ARGS and PGDL_ARGS
naming the mirrors, SWEEP_ARGS choosing a few tasks of each paper sweep (`run_sweep.py --only`, `--set
max_epochs=1`). The corrected profile's PGDL mirror answers Range requests; the paper profile's does not (the whole
archive is downloaded, and the members already in DATA are checked against it). Both profiles share DATA, as a user's
do. Exit status: make's first non-zero one.

    python tests/rehearsal.py --out experiments/rehearsal [--sweep-args "..."] [--make make]
"""
import argparse
import hashlib
import json
import shlex
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent
sys.path.insert(0, str(TESTS))

from conftest import synthetic_mnist_files  # noqa: E402
from download_server import LoopbackServer  # noqa: E402

REPO = TESTS.parent
PROFILES = (("corrected", True), ("paper", False))  # (profile, the PGDL mirror answers Range requests)
MNIST_COUNTS = {"train": 600, "t10k": 100}
ARCHIVE = "public_data.zip"


def write_mirror(folder: Path) -> Path:
    """The mirrors' files under `folder` (`mnist/*.gz`, `mnist/expect.json`, `pgdl/public_data.zip`), written once."""
    from model.zoo import pgdl_replica

    mnist = folder / "mnist"
    if not (mnist / "expect.json").is_file():
        expect = {}
        for seed, (prefix, count) in enumerate(MNIST_COUNTS.items()):
            for path in synthetic_mnist_files(mnist, count=count, seed=seed, prefix=prefix):
                shape = [count, 28, 28] if "images" in path.name else [count]
                expect[path.name] = {"md5": hashlib.md5(path.read_bytes()).hexdigest(), "shape": shape}
        (mnist / "expect.json").write_text(json.dumps(expect, indent=2))
    archive = folder / "pgdl" / ARCHIVE
    if not archive.is_file():
        tree = pgdl_replica.write_replica(folder / "pgdl" / "tree", seed=0)
        pgdl_replica.write_zip(tree, archive)
    return folder


def served(mirror: Path) -> dict[str, bytes]:
    """{URL path: bytes}: `/mnist/<name>.gz` as the MNIST mirrors lay them out, `/pgdl/public_data.zip`."""
    files = {f"/mnist/{p.name}": p.read_bytes() for p in sorted((mirror / "mnist").glob("*.gz"))}
    return {**files, f"/pgdl/{ARCHIVE}": (mirror / "pgdl" / ARCHIVE).read_bytes()}


def make_variables(out: Path, url: str, mirror: Path, profile: str, sweep_args: str) -> list[str]:
    """The `make reproduce` variables of one profile's rehearsal."""
    return [f"PROFILE={profile}", f"DATA={out / 'data'}", f"EXPERIMENTS={out / 'experiments'}",
            f"MNIST_ARGS=--base-url {url}/mnist/ --expect {mirror / 'mnist' / 'expect.json'}",
            f"PGDL_ARGS=--url {url}/pgdl/{ARCHIVE}", f"SWEEP_ARGS={sweep_args}"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, type=Path, help="folder of the rehearsal (mirror, data, experiments)")
    parser.add_argument("--sweep-args", default="", help="SWEEP_ARGS for both profiles (a subset: run_sweep.py --only)")
    parser.add_argument("--make", default="make", help="the make command (default: make)")
    args = parser.parse_args(argv)
    out = args.out.resolve()
    mirror = write_mirror(out / "mirror")
    for profile, ranges in PROFILES:
        with LoopbackServer(served(mirror), ranges=ranges) as server:
            command = [*shlex.split(args.make), "--no-print-directory", "-C", str(REPO), "reproduce",
                       *make_variables(out, server.url, mirror, profile, args.sweep_args)]
            print(f"rehearsal: {profile} profile, PGDL mirror {'with' if ranges else 'without'} Range support: "
                  + shlex.join(command), flush=True)
            code = subprocess.run(command).returncode
        if code:
            print(f"error: rehearsal of the {profile} profile: make reproduce exited {code}", file=sys.stderr)
            return code
    print(f"rehearsal: both profiles reproduced under {out / 'experiments'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
