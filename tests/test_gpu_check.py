"""`make gpu-check` end to end on a CPU (quick sizes): no GPU is visible, the CPU/XLA checks pass, GPU rows skipped."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_gpu_check_runs_on_a_cpu_and_writes_its_report(tmp_path):
    out = tmp_path / "gpu_check.txt"
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "-1", "TF_CPP_MIN_LOG_LEVEL": "2"}
    # The Makefile's target, as a user runs it (-o: never rebuild the environment here; PY: this interpreter).
    done = subprocess.run(["make", "--no-print-directory", "-C", str(REPO), "-o", ".venv/.installed", "gpu-check",
                           f"PY={sys.executable}", f"DATA={tmp_path / 'data'}", f"GPU_CHECK_ARGS=--quick --out {out}"],
                          capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    report = out.read_text()
    assert "TensorFlow 2." in report and "GPU: none visible to TensorFlow" in report
    assert report.count("[ok] N = ") == 2 and "same MST edge array" in report
    assert "[ok] training: XLA True" in report
    assert report.count("[skipped]") == 2 and "FAILED" not in report
    assert [p.name for p in tmp_path.iterdir()] == ["gpu_check.txt"]                # nothing else written
