"""No document in the repository points at something a user of a clone cannot open: files of this repository that
do not exist, modules that do not exist, project-internal issue numbers, or documents that were never part of it.

Scanned: every tracked Markdown file, the configs' JSON (descriptions), and the docstrings and comments of every
Python file (model/, scripts/, tests/, benchmarks/, the entry points).
"""
import ast
import re
import subprocess

from conftest import REPO

TRACKED = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True,
                         check=True).stdout.split()
# top-level folders whose files are all in the repository (data/ and experiments/ hold generated files)
SOURCE_DIRS = ("model", "docs", "configs", "scripts", "tests", "benchmarks", "accuracies", ".ci")
# paths a document may name that are made by the code or by the user, not shipped
MADE = re.compile(r"benchmarks/results|tests/data/|<|\*|\{|\.\.\.|…")
ISSUE = re.compile(r"\b[Ii]ssues? ?#?\d+")
PATH = re.compile(r"(?<![\w./-])((?:\.ci|model|docs|configs|scripts|tests|benchmarks|accuracies)/[\w./<>*{}…-]*\w)")
DOC = re.compile(r"(?<![\w/.-])([\w-]+\.(?:md|txt|cff))\b")
MODULE = re.compile(r"(?<![\w.])(model(?:\.\w+)+)")
OUTPUT_DOCS = {"report.md", "accuracies.md", "intervals.md", "paired_tests.md", "nemenyi_p.md", "selected.md",
               "activity.md", "paper_comparison.md", "locked.txt", "gpu_check.txt"}  # written by the pipeline
KERAS_MODEL = {"compile", "fit", "evaluate", "predict", "losses", "trainable_variables", "save", "layers",
               "stop_training"}  # `model`
# as a variable holding a Keras model (the README's example), not this package


def texts() -> list[tuple[str, str]]:
    """(file, text) of every document and docstring/comment block to scan."""
    out = []
    for name in TRACKED:
        path = REPO / name
        if name.endswith(".md") or (name.startswith("configs/") and name.endswith(".json")):
            out.append((name, path.read_text(encoding="utf-8")))
        elif name.endswith(".py") and name not in ("tests/test_references.py", "tests/test_docs.py"):  # the checkers
            source = path.read_text(encoding="utf-8")
            tree = ast.parse(source)
            docs = [ast.get_docstring(node) or "" for node in ast.walk(tree)
                    if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))]
            comments = [line.split("#", 1)[1] for line in source.splitlines() if "#" in line]
            out.append((name, "\n".join(docs + comments)))
    return out


def test_no_reference_to_an_issue_number():
    found = [(name, m.group(0)) for name, text in texts() for m in ISSUE.finditer(text)]
    assert found == []


def test_every_named_repository_file_exists():
    tracked = set(TRACKED)
    folders = {str(p) for name in TRACKED for p in __import__("pathlib").PurePosixPath(name).parents}
    missing = []
    for name, text in texts():
        for m in PATH.finditer(text):
            ref = m.group(1).rstrip(".")
            if MADE.search(ref) or ref in tracked or ref.rstrip("/") in folders:
                continue
            missing.append((name, ref))
        for m in DOC.finditer(text):
            ref = m.group(1)
            if ref in OUTPUT_DOCS or any(t == ref or t.endswith("/" + ref) for t in tracked):
                continue
            missing.append((name, ref))
    assert missing == []


def test_every_named_module_exists():
    missing = []
    for name, text in texts():
        for m in MODULE.finditer(text):
            parts = m.group(1).split(".")
            if parts[1] in KERAS_MODEL:
                continue
            if not any((REPO / "/".join(parts[:n])).with_suffix(".py").is_file()
                       or (REPO / "/".join(parts[:n]) / "__init__.py").is_file() for n in range(2, len(parts) + 1)):
                missing.append((name, m.group(1)))
    assert missing == []
