"""Every module of model/ imports on its own: a fresh interpreter imports each with no other `model` module loaded.

One subprocess for all modules (third-party packages stay cached between them, so it is fast); before each import
every `model` module is dropped from `sys.modules`, so an import that works only after another one (a hidden
import loop, a missing import) fails here.
"""
import os
import subprocess
import sys

from conftest import REPO

PROBE = """
import importlib, sys, traceback
failed = []
for name in sys.argv[1:]:
    for loaded in [m for m in sys.modules if m == "model" or m.startswith("model.")]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except Exception:
        failed.append(name + ": " + traceback.format_exc().strip().splitlines()[-1])
print("\\n".join(failed))
sys.exit(1 if failed else 0)
"""


def modules() -> list[str]:
    """Dotted names of every module and package under model/."""
    return sorted(".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
                  for path in (REPO / "model").rglob("*.py"))


def test_every_model_module_imports_on_its_own():
    names = modules()
    assert "model.runs.execute" in names and "model.regularisers.names" in names and len(names) > 40
    done = subprocess.run([sys.executable, "-c", PROBE, *names], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert done.returncode == 0, done.stdout + done.stderr[-2000:]


def test_the_module_maps_match_the_tree():
    """README lists every sub-package of model/; docs/architecture.md's module map names every module."""
    readme = (REPO / "README.md").read_text()
    architecture = (REPO / "docs" / "architecture.md").read_text()
    module_map = architecture[architecture.index("## Module map"):architecture.index("## Contracts")]
    packages = sorted(p.parent.name for p in (REPO / "model").glob("*/__init__.py"))
    assert packages == ["analysis", "commands", "files", "measures", "regularisers", "runs", "sweeps", "zoo"]
    assert [p for p in packages if f"`model/{p}/`" not in readme] == []
    for path in (REPO / "model").rglob("*.py"):
        if path.name != "__init__.py":
            inside = "/".join(path.relative_to(REPO / "model").parts[1:])  # e.g. figures/cd_diagram.py
            assert any(f"`{name}`" in module_map for name in (path.name, inside, f"model/{path.name}")), path
    sections = [line for line in module_map.splitlines() if line.startswith("| **`model/")]
    assert sorted(line.split("`")[1].strip("/").split("/")[1] for line in sections) == packages
