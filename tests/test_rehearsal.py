"""`make rehearsal`: `make reproduce` end to end for both profiles against loopback mirrors (tests/rehearsal.py), run
twice, asserting on what a user reads.

The Makefile's REHEARSAL_ARGS choose 2 networks per block × (baseline, T1 at 0.1) × 1 epoch: 8 runs per profile.
"""
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
NETWORKS = {"mnist": ("mnist/0", "mnist/2"), "pgdl": ("pgdl/task1_v4/20", "pgdl/task1_v4/148")}
CELLS = ("none/0.0", "t1/0.1")
RUNS = {f"{net}/{cell}/seed_0" for nets in NETWORKS.values() for net in nets for cell in CELLS}
RUNS_NETWORKS = [net for nets in NETWORKS.values() for net in nets]
PROFILES = ("corrected", "paper")


def make(*args) -> subprocess.CompletedProcess:
    """`make` in the repository, never rebuilding the environment (CI's `make test` made it), with this interpreter."""
    return subprocess.run(["make", "--no-print-directory", "-C", str(ROOT), "-o", ".venv/.installed", *args,
                           f"PY={sys.executable}"], capture_output=True, text=True)


def attempts(run: Path) -> int:
    """How many times the run's training process started (train.log's attempt markers)."""
    return (run / "train.log").read_text().count("==== attempt started")


def user_view(out: Path, profile: str) -> dict:
    """What a user reads of one profile's reproduction: accuracies, statistics, the report."""
    repro = out / "experiments" / "paper" / profile
    return {"accuracies": pd.read_csv(repro / "accuracies.csv").drop(columns=["wall_seconds"], errors="ignore"),
            "statistics": {b: json.loads((repro / "statistics" / b / "statistics.json").read_text())
                           for b in ("mnist", "pgdl", "combined")},
            "report": (repro / "report" / "report.md").read_text()}


@pytest.mark.slow
def test_make_rehearsal_reproduces_both_profiles_and_resumes(tmp_path):
    out = tmp_path / "rehearsal"
    pins = ROOT / "model" / "zoo" / "pgdl_sha256.json"
    pins_before = (pins.read_bytes(), pins.stat().st_mtime_ns)
    first = make("rehearsal", f"REHEARSAL_OUT={out}")
    assert first.returncode == 0, first.stdout[-4000:] + first.stderr[-4000:]
    assert "rehearsal: both profiles reproduced" in first.stdout

    # The PGDL checksums: recorded under the data root on the first fetch (Range), checked by the second (no Range).
    record = json.loads((out / "data" / "pgdl" / "sha256_recorded.json").read_text())["sha256"]
    assert len(record) == 28
    for name, digest in record.items():
        assert hashlib.sha256((out / "data" / "pgdl" / name).read_bytes()).hexdigest() == digest, name
    assert "SHA-256: 28 trusted on first use" in first.stderr and "SHA-256: 28 recorded earlier" in first.stderr
    assert "server ignores Range requests" in first.stderr
    assert (pins.read_bytes(), pins.stat().st_mtime_ns) == pins_before  # nothing written into the package

    views = {}
    for profile in PROFILES:
        repro = out / "experiments" / "paper" / profile
        done = {p.parent.relative_to(repro).as_posix() for p in repro.rglob("DONE.json")}
        assert done == RUNS, profile  # every expected run finished, and no other
        view = views[profile] = user_view(out, profile)
        assert set(view["accuracies"]["task_id"]) == RUNS
        assert pd.read_csv(repro / "accuracies.incomplete.csv").empty
        for block, networks in NETWORKS.items():
            assert set(view["statistics"][block]["selected"]) == set(networks), (profile, block)
        assert set(view["statistics"]["combined"]["selected"]) == set(RUNS_NETWORKS)
        assert all(s["treatments"] == ["none", "t1"] for s in view["statistics"].values())
        report = view["report"]
        for heading in ("## Summary", "## Provenance", "## mnist", "## pgdl", "## combined"):
            assert f"\n{heading}\n" in report, (profile, heading)
        assert "Every expected run finished." in report
        assert f"Decorrelating neurons using persistence: {profile} profile" in report
        for row in ("| block mnist | 4 |", "| block pgdl | 4 |", "| combined | 8 |"):
            assert row in report, (profile, row)  # provenance of every run
        assert (repro / "report" / "report.html").stat().st_size > 1000
        measures = pd.read_csv(repro / "measures.csv")
        assert set(measures["run_id"]) >= RUNS | {f"pgdl/task1_v4/{i}" for i in (20, 21, 22, 23, 148, 149, 150, 151)}
    assert (views["paper"]["accuracies"]["profile"] == "paper").all()

    second = make("rehearsal", f"REHEARSAL_OUT={out}")
    assert second.returncode == 0, second.stdout[-4000:] + second.stderr[-4000:]
    assert second.stdout.count("0 trained now, 4 already done, 0 failed") == 4
    assert second.stderr.count("SHA-256: 28 recorded earlier") == 2
    for profile in PROFILES:
        repro = out / "experiments" / "paper" / profile
        assert all(attempts(repro / run) == 1 for run in RUNS), profile  # no run trained twice
        again = user_view(out, profile)
        pd.testing.assert_frame_equal(again["accuracies"], views[profile]["accuracies"])
        assert again["statistics"] == views[profile]["statistics"] and again["report"] == views[profile]["report"]

