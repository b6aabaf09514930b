"""The installed package works on its own: a wheel built from this checkout, installed into a fresh venv that sees
only the runtime dependencies (no test extras, no checkout), runs the README's T1 example in a user's own Keras model
(validation loss without the penalty), its console scripts from a folder outside the checkout, and a single run that
records the package's version in DONE.json.

Offline: the fresh venv gets the runtime dependencies already installed in this environment, linked into one folder
named by a .pth file: exactly the closure of pyproject's `dependencies` (their own dependencies included, extras
left out), read from the installed distributions' metadata.
"""
import json
import os
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
from conftest import REPO
from packaging.requirements import Requirement
from test_public_api import readme_example

pytestmark = pytest.mark.slow  # about a minute and a half on 2 loaded cores


def runtime_closure() -> set[str]:
    """Normalised names of the installed distributions the package needs at run time (no extras)."""
    seen: set[str] = set()
    todo = [Requirement(r) for r in metadata.requires("decorrelating-neurons") or []]
    while todo:
        req = todo.pop()
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue
        name = req.name.lower().replace("_", "-")
        if name in seen:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue  # an optional platform dependency not installed here
        seen.add(name)
        todo += [Requirement(r) for r in dist.requires or []]
    return seen


def link_runtime(folder: Path) -> None:
    """Symlink the top-level files and folders of every runtime distribution (and its dist-info) into `folder`."""
    folder.mkdir()
    for name in runtime_closure():
        dist = metadata.distribution(name)
        tops = {Path(str(f)).parts[0] for f in dist.files or [] if not str(f).startswith("..")}
        for top in tops:
            source = Path(dist.locate_file(top))
            if source.exists() and not (folder / top).exists():
                (folder / top).symlink_to(source)


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("install")
    source = tmp / "source"  # what a source distribution holds; built there, so nothing is written in the checkout
    shutil.copytree(REPO / "model", source / "model", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(REPO / name, source / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w",
                    str(tmp / "dist"), str(source)], check=True, capture_output=True)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(tmp / "venv")], check=True)
    python = tmp / "venv" / "bin" / "python"
    [wheel] = (tmp / "dist").glob("decorrelating_neurons-*.whl")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps",
                    "--no-index", str(wheel)], check=True, capture_output=True)
    link_runtime(tmp / "runtime")
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    (Path(site) / "runtime_dependencies.pth").write_text(f"{tmp / 'runtime'}\n")
    return tmp / "venv" / "bin"


def run(args, cwd, **kw):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    return subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True, env=env, **kw)


def test_the_installed_package_runs_without_the_checkout(venv, tmp_path):
    probe = run([venv / "python", "-c", "import model, pytest"], tmp_path)
    assert "No module named 'pytest'" in probe.stderr  # the test extras are not there
    where = run([venv / "python", "-c", "import model; print(model.__file__)"], tmp_path, check=True).stdout
    assert str(venv.parent) in where and str(REPO) not in where

    (tmp_path / "example.py").write_text(readme_example() + "\nassert min(history.history['val_loss']) > 0\n"
                                         "model(x_val[:64], training=False)\nassert model.losses == []\n")
    example = run([venv / "python", "example.py"], tmp_path)
    assert example.returncode == 0, example.stderr[-2000:]

    version = run([venv / "dnp-sweep-status", "--version"], tmp_path, check=True).stdout
    assert version.strip() == f"dnp-sweep-status (decorrelating-neurons) {metadata.version('decorrelating-neurons')}"
    help_text = run([venv / "dnp-extract-statistics", "--help"], tmp_path, check=True).stdout
    assert help_text.startswith("usage: dnp-extract-statistics ") and "exit status:" in help_text

    spec = json.loads((REPO / "configs" / "digits" / "t1.json").read_text())
    (tmp_path / "spec.json").write_text(json.dumps({**spec, "output_root": "runs", "max_epochs": 1}))
    trained = run([venv / "dnp-run-experiment", "spec.json", "--set", "weight=0.1"], tmp_path)
    assert trained.returncode == 0, trained.stderr[-2000:]
    [done] = (tmp_path / "runs").rglob("DONE.json")
    record = json.loads(done.read_text())
    assert record["version"] == metadata.version("decorrelating-neurons") and record["commit"] is None
    assert record["weight"] == 0.1
