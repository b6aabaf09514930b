"""Every module, function, class and file that README.md and docs/architecture.md name in backticks exists.

Dotted names (`model.runs.execute.prepare`, or `sweeps.grid.load` inside a model package) are resolved by import and
getattr; bare class names (`TaskOutcome`, `Spec`) must be a class of model/; repository paths (`model/runs/spec.py`,
`scripts/run_sweep.py`, `configs/digits/`) must exist. A renamed or removed name fails here until the docs follow.
"""
import ast
import importlib
import re

import pytest
from conftest import REPO

DOCS = ("README.md", "docs/architecture.md")
PACKAGES = sorted(p.parent.name for p in (REPO / "model").glob("*/__init__.py"))
TRACKED_ROOTS = ("model/", "scripts/", "configs/", "docs/", "benchmarks/", "tests/", "accuracies/", "Dockerfile")
GENERATED = ("benchmarks/results/",)  # written by make bench / make gpu-check (git-ignored)
# CamelCase names the docs give that belong to other libraries (submitit, Keras, Python)
OTHERS = {"SlurmExecutor", "DelayedSubmission", "Dropout", "BatchNorm", "Dense", "Conv2D", "HParams", "TensorBoard",
          "ModelCheckpoint", "EarlyStopping", "TimeoutExpired", "PR_SET_PDEATHSIG"}


def spans(text: str) -> list[str]:
    """The contents of every inline code span (`...`), outside fenced code blocks."""
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    return re.findall(r"`([^`\n]+)`", text)


def dotted_names(span: str) -> list[str]:
    """`model.a.b.c(args)` → ['model.a.b.c']; `sweeps.grid.load` → ['model.sweeps.grid.load'] (a package of
    model/ first); anything else (a JSON key, `spec.to_dict()`) → []."""
    names = []
    for match in re.finditer(r"(?<![\w./-])([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+)", span):
        name, after = match.group(1), span[match.end():match.end() + 1]
        if after in ("/",) or re.search(r"\.(py|json|csv|md|npz|h5|png|pdf|tex|html|txt|log)$", name):
            continue  # a file name
        head = name.split(".")[0]
        if head == "model":
            names.append(name)
        elif head in PACKAGES:
            names.append("model." + name)
    return names


def resolve(name: str):
    """Import the longest module prefix of `name`, then getattr the rest; AssertionError naming what is missing."""
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attr in parts[cut:]:
            if not hasattr(obj, attr):
                raise AssertionError(f"{name}: {'.'.join(parts[:cut])} has no {attr!r}")
            obj = getattr(obj, attr)
        return obj
    raise AssertionError(f"{name}: no such module")


def model_classes() -> set[str]:
    """Every class defined anywhere in model/ (by its source, without importing it)."""
    names = set()
    for path in (REPO / "model").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                names.add(node.name)
    return names


@pytest.mark.parametrize("doc", DOCS)
def test_every_named_module_function_and_class_exists(doc):
    text = (REPO / doc).read_text(encoding="utf-8")
    classes = model_classes()
    missing = []
    for span in spans(text):
        for name in dotted_names(span):
            try:
                resolve(name)
            except AssertionError as err:
                missing.append(str(err))
        bare = re.fullmatch(r"([A-Z][a-z]\w*)(\(.*\))?", span.strip())
        called = re.findall(r"(?<![\w.])([A-Z][a-z]\w*)\(", span)  # `-> [Outcome(task_id, ...)]`
        for name in {*called, *([bare.group(1)] if bare else [])}:
            if name not in classes | OTHERS and not (REPO / name).exists():
                missing.append(f"{name}: no class of that name in model/")
    assert not missing, f"{doc} names what does not exist:\n" + "\n".join(missing)


@pytest.mark.parametrize("doc", DOCS)
def test_every_named_repository_path_exists(doc):
    text = (REPO / doc).read_text(encoding="utf-8")
    missing = []
    for span in spans(text):
        for token in span.split():
            path = token.strip("(),;:'\"").split("::")[0]
            if path.startswith(TRACKED_ROOTS) and not path.startswith(GENERATED) and not re.search(r"[<>*{}$|\[\]]",
                                                                                                  path):
                if not (REPO / path).exists():
                    missing.append(path)
    assert not missing, f"{doc} names files that do not exist:\n" + "\n".join(missing)


def test_the_checks_see_what_they_check():
    """The parsers find the names this file's docstring gives as examples, and a made-up one fails."""
    assert dotted_names("model.runs.execute.prepare(spec)") == ["model.runs.execute.prepare"]
    assert dotted_names("sweeps.grid.load(path)") == ["model.sweeps.grid.load"]
    assert dotted_names("spec.to_dict()") == [] and dotted_names("model/runs/spec.py") == []
    assert resolve("model.runs.execute.prepare").__name__ == "prepare"
    with pytest.raises(AssertionError, match="no 'load'"):
        resolve("model.sweeps.load")
    assert "TaskOutcome" in model_classes() and "Outcome" not in model_classes()
