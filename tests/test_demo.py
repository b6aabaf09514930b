"""`make demo` end to end on a reduced digits grid: the Makefile's own steps (sweep → accuracies → statistics →
report), with the demo sweep file shrunk to 2 networks × 3 treatments × 2 epochs."""
import json
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
