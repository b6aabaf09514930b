"""`make demo`, `make activity` and `make worker` end to end on reduced digits grids: the Makefile's own steps (sweep
→ accuracies → statistics → report), with the sweep files shrunk (demo: 2 networks × 3 treatments × 2 epochs;
activity: 2 networks × (the baseline over 2 seeds + T1 at one weight) × 1 epoch; worker: one task of 1 epoch)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_make_demo_on_a_reduced_grid(tmp_path):
    sweep = json.loads((ROOT / "configs/digits/demo.json").read_text())
    sweep["base"].update(output_root=str(tmp_path / "runs"), max_epochs=2, checkpoint_every=1)
    block = sweep["grid"][0]
    block["networks"] = ["digits/0", "digits/2"]
    block["cells"] = [c if c["regulariser"] == "none" else {**c, "weights": [0.001]}
                      for c in block["cells"] if c["regulariser"] in ("none", "t1", "l2")]
    sweep["expect_tasks"] = 6
    (tmp_path / "sweep.json").write_text(json.dumps(sweep))
    # -o: never rebuild the environment here (CI's `make test` made it); PY: this interpreter.
    done = subprocess.run(["make", "--no-print-directory", "-C", str(ROOT), "-o", ".venv/.installed", "demo",
                           f"PY={sys.executable}", f"DEMO_SWEEP={tmp_path / 'sweep.json'}", f"DEMO_OUT={tmp_path}",
                           "JOBS=2"], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = tmp_path / "report" / "report.md"
    assert f"Report: {report}" in done.stdout.splitlines()[-1]
    accuracies = pd.read_csv(tmp_path / "accuracies.csv")
    assert len(accuracies) == 6 and (accuracies["test_accuracy"] > 0.1).all()  # above chance after 2 epochs
    stats = json.loads((tmp_path / "statistics" / "combined" / "statistics.json").read_text())
    assert stats["n_networks"] == 2 and stats["treatments"] == ["none", "t1", "l2"]
    text = report.read_text()
    assert "## combined" in text and "## Training curves" in text
    assert "## Provenance" in text
    assert accuracies["commit"].notna().all() or not (ROOT / ".git").exists()  # a checkout: each run names its commit
    assert (tmp_path / "report" / "cd_combined.png").stat().st_size > 1000
    assert (tmp_path / "report" / "report.html").stat().st_size > 1000


@pytest.mark.slow
def test_make_activity_on_a_reduced_grid(tmp_path):
    sweep = json.loads((ROOT / "configs/digits/activity_seeds.json").read_text())
    sweep["base"].update(max_epochs=1, checkpoint_every=1)
    baseline, regularised = sweep["grid"]
    baseline["seeds"] = [0, 1]
    regularised["cells"] = [{"regulariser": "t1", "weights": [0.1]}]
    sweep["expect_tasks"] = 6
    (tmp_path / "sweep.json").write_text(json.dumps(sweep))
    done = subprocess.run(["make", "--no-print-directory", "-C", str(ROOT), "-o", ".venv/.installed", "activity",
                           f"PY={sys.executable}", f"ACTIVITY_SWEEP={tmp_path / 'sweep.json'}",
                           f"ACTIVITY_OUT={tmp_path}", "JOBS=2"], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert done.stdout.splitlines()[-1] == f"Report: {tmp_path / 'report' / 'report.md'}"
    accuracies = pd.read_csv(tmp_path / "accuracies.csv")
    assert len(accuracies) == 6 and set(accuracies["profile"]) == {"paper"}
    stats = json.loads((tmp_path / "statistics" / "combined" / "statistics.json").read_text())
    assert stats["treatments"] == ["none", "t1"]
    assert (tmp_path / "statistics" / "combined" / "paper_baseline" / "statistics.json").is_file()  # the other rule
    text = (tmp_path / "report" / "report.md").read_text()
    assert "## Did the regulariser act?" in text and "Did the regulariser act? " in text.splitlines()[0]
    lines = [line.split() for line in done.stdout.splitlines()]
    header = next(words for words in lines if words[:1] == ["cell"])  # sweep_status.py's table, the last step
    totals = dict(zip(header[1:], next(words for words in lines if words[:1] == ["all"])[1:]))
    assert totals["done"] == totals["total"] == "6", done.stdout[-2000:]


@pytest.mark.slow
def test_make_worker_on_a_cpu_machine(tmp_path):
    """No GPU here: `make worker` (GPU 0 by default) is an error naming the remedy; with --allow-cpu it trains."""
    make = ["make", "--no-print-directory", "-C", str(ROOT), "-o", ".venv/.installed", "worker", f"PY={sys.executable}",
            "SWEEP=configs/digits/demo.json", f"DATA={tmp_path / 'data'}", f"REPRO_OUT={tmp_path / 'runs'}"]
    only = "--only network=digits/0 --only regulariser=none --set max_epochs=1"
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "-1"}
    refused = subprocess.run([*make, f"SWEEP_ARGS={only}"], capture_output=True, text=True, env=env)
    assert refused.returncode != 0, refused.stdout + refused.stderr
    [line] = [line for line in refused.stderr.splitlines() if line.startswith("error: ")]
    assert "--gpus 0" in line and "--allow-cpu" in line and not (tmp_path / "runs").exists()
    trained = subprocess.run([*make, f"SWEEP_ARGS={only} --allow-cpu"], capture_output=True, text=True, env=env)
    assert trained.returncode == 0, trained.stdout[-3000:] + trained.stderr[-3000:]
    assert "1 tasks in" in trained.stdout and "1 trained now" in trained.stdout
    assert json.loads((tmp_path / "runs/digits/0/none/0.0/seed_0/DONE.json").read_text())["epochs"] == 1
