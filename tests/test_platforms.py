"""Platforms, measured: the locked runtime set resolves as wheels for Linux x86-64 and aarch64 and macOS arm64 on
Python 3.11, 3.12 and 3.13 (README, "Installing").

For each target, the lock's runtime selection (`uv export`, no extras) with its markers evaluated for that target is
given to `pip install --dry-run --only-binary=:all: --report` with the target's Python and every platform tag a real
machine of that kind accepts (pip does not widen an explicit `--platform`: a glibc 2.28 Linux accepts manylinux_2_5
… manylinux_2_28 and their legacy aliases, TensorFlow's wheels being manylinux_2_27; macOS 14 arm64 accepts
macosx_11_0 … macosx_14_0 arm64 and universal2, as `packaging.tags` lists). Nothing is installed, and no wheel is
downloaded whole: pip's `fast-deps` reads each wheel's metadata by HTTP range requests (this index serves no PEP 658
metadata files; without it every wheel is downloaded whole: TensorFlow alone is 223, 282 and 572 MB for macOS,
aarch64 and x86-64, per Python). pip must pick exactly the locked versions and nothing else (pip evaluates the
markers inside the packages' own metadata for this machine, not the target: none of the runtime set's dependencies
has a platform marker that differs between these targets, which this equality checks). Skipped, with pip's reason,
when no package index answers. The nine resolutions run in parallel: ≈ 55 s of CPU in all (243 s wall at load
average 23 on 2 cores; marked slow).
"""
import json
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.tags import mac_platforms
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
PYTHONS = ("3.11", "3.12", "3.13")
GLIBC_MINOR = 28  # RHEL 8, Debian 10, Ubuntu 20.04 and newer
MACOS = (14, 0)


def linux_tags(arch: str) -> list[str]:
    tags = [f"manylinux_2_{minor}_{arch}" for minor in range(GLIBC_MINOR, 4, -1)]
    legacy = {"manylinux2014": 17} | ({"manylinux2010": 12, "manylinux1": 5} if arch == "x86_64" else {})
    return tags + [f"{name}_{arch}" for name in legacy] + [f"linux_{arch}"]


TARGETS = {  # name: (platform tags, marker environment without the Python version)
    "linux-x86_64": (linux_tags("x86_64"), {"sys_platform": "linux", "platform_system": "Linux",
                                            "platform_machine": "x86_64"}),
    "linux-aarch64": (linux_tags("aarch64"), {"sys_platform": "linux", "platform_system": "Linux",
                                              "platform_machine": "aarch64"}),
    "macos-arm64": (list(mac_platforms(MACOS, "arm64")), {"sys_platform": "darwin", "platform_system": "Darwin",
                                                          "platform_machine": "arm64"}),
}


def uv() -> str:
    found = shutil.which("uv") or str(Path(sys.executable).parent / "uv")
    if not Path(found).exists():
        pytest.fail("uv not found: make setup installs it (the Makefile's UV_VERSION)")
    return found


def locked_runtime() -> list[Requirement]:
    """The lock's runtime selection: `name==version[ ; marker]`, one per locked package."""
    out = subprocess.run([uv(), "export", "--frozen", "--no-emit-project", "--no-hashes", "--quiet"], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    return [Requirement(line) for line in out.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def environment(python: str, target: str) -> dict:
    return {"python_version": python, "python_full_version": f"{python}.0", "os_name": "posix",
            "implementation_name": "cpython", "platform_python_implementation": "CPython", "platform_release": "",
            "platform_version": "", "extra": "", **TARGETS[target][1]}


def resolve(python: str, target: str, report: Path) -> tuple[str, set[str], set[str] | None, str]:
    """(target label, expected `name==version`s, what pip would install or None when pip failed, pip's last words)."""
    env = environment(python, target)
    pins = [r for r in locked_runtime() if r.marker is None or Marker(str(r.marker)).evaluate(env)]
    expected = {f"{canonicalize_name(r.name)}=={next(iter(r.specifier)).version}" for r in pins}
    cmd = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
           "--use-feature=fast-deps", "--only-binary=:all:", "--implementation", "cp", "--python-version", python,
           "--report", str(report),
           *(f"--platform={tag}" for tag in TARGETS[target][0]), *(f"{r.name}{r.specifier}" for r in pins)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    label = f"{target} Python {python}"
    if proc.returncode != 0:
        errors = [line for line in proc.stderr.splitlines() if "ERROR" in line or "error" in line.lower()]
        return label, expected, None, " | ".join(errors[-3:]) or proc.stderr.strip()[-500:]
    got = {f"{canonicalize_name(item['metadata']['name'])}=={item['metadata']['version']}"
           for item in json.loads(report.read_text())["install"]}
    return label, expected, got, ""


NO_INDEX = ("NewConnectionError", "Max retries exceeded", "Temporary failure in name resolution",
            "Network is unreachable", "Connection refused", "Read timed out")


@pytest.mark.slow
def test_the_locked_runtime_resolves_as_wheels_on_every_supported_platform(tmp_path):
    combos = [(python, target) for target in TARGETS for python in PYTHONS]
    with ThreadPoolExecutor(max_workers=len(combos)) as pool:
        outcomes = list(pool.map(lambda c: resolve(*c, tmp_path / f"{c[1]}-{c[0]}.json"), combos))
    failed = [(label, why) for label, _, got, why in outcomes if got is None]
    if failed and all(any(word in why for word in NO_INDEX) for _, why in failed):
        pytest.skip(f"no package index answered: {failed[0][1]}")
    problems = [f"{label}: pip cannot install it as wheels: {why}" for label, why in failed]
    for label, expected, got, _ in outcomes:
        if got is not None and got != expected:
            problems.append(f"{label}: pip would install {sorted(got - expected)} beyond the lock and not "
                            f"{sorted(expected - got)}")
    assert not problems, "\n".join(problems)
