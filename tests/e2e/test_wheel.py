"""The wheel as a user gets it: built with `python -m build`, installed into a fresh venv outside the
checkout, and run from outside it: `init`, `serve`, `call`, the browser page and the console.

Other Pythons can be tried too: ANVIL_DEV_TEST_PYTHONS="python3.10 python3.13" adds a venv per interpreter.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from anvil_dev import __version__

from helpers import ROOT, OutputLines, free_port

# What the wheel is built from; copied out so the build leaves no build/ or *.egg-info in the checkout.
BUILD_INPUTS = ["pyproject.toml", "setup.cfg", "README.md", "LICENSE"]
# Files that are data, not modules: a wheel without them installs and imports, then fails on first use.
SHIPPED = [
    "templates/app/anvil.yaml",
    "templates/app/gitignore",
    "templates/app/server_code/ServerModule1.py",
    "templates/app/client_code/Shapes.py",
    "templates/app/theme/assets/index.html",
    "templates/app/client_code/Form1/__init__.py",
    "templates/app/client_code/Form1/form_template.yaml",
    "browser/anvil/__init__.py",
    "browser/anvil/tables/__init__.py",
    "static/anvil.css",
    "static/anvil.js",
    "static/console.html",
    "static/console.js",
    "static/console.css",
    "runtime/anvil/__init__.py",
    "runtime/anvil/server.py",
    "runtime/anvil/tables/query.py",
    "runtime/anvil/users/__init__.py",
]
PYTHONS = [sys.executable, *os.environ.get("ANVIL_DEV_TEST_PYTHONS", "").split()]
# The first test pays for the build, a venv and an install (each step may take `_run`'s 180 s):
# more than the suite's 120 s a test, when another pytest process shares the CPUs.
pytestmark = pytest.mark.timeout(600)


def _clean_env(**extra: str) -> dict[str, str]:
    """The environment of a user's shell: nothing that would lead Python back to the checkout."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env.update(PYTHONUNBUFFERED="1", **extra)
    return env


def _run(*args: str | Path, cwd: Path, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, f"{' '.join(map(str, args))} failed:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    src = tmp_path_factory.mktemp("src")
    for name in BUILD_INPUTS:
        shutil.copy2(ROOT / name, src / name)
    shutil.copytree(ROOT / "anvil_dev", src / "anvil_dev", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    out = tmp_path_factory.mktemp("dist")
    result = _run(sys.executable, "-m", "build", "--wheel", "--outdir", out, src, cwd=src)
    # setuptools warns this way when data directories look like packages it was not told about.
    assert "would be ignored" not in result.stdout + result.stderr
    (built,) = out.glob("anvil_dev-*.whl")
    return built


def test_wheel_holds_the_data_files(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = [f for f in SHIPPED if f"anvil_dev/{f}" not in names]
    assert not missing, f"not in {wheel.name}: {missing}"
    assert any(n.endswith(".dist-info/licenses/LICENSE") or n.endswith(".dist-info/LICENSE") for n in names)


@pytest.fixture(scope="module", params=PYTHONS, ids=lambda p: Path(p).name)
def venv(request: pytest.FixtureRequest, wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv (no system site-packages) with the wheel and its dependencies installed, and nothing else."""
    python = shutil.which(request.param) or request.param
    root = tmp_path_factory.mktemp("venv")
    _run(python, "-m", "venv", "--without-pip", root / "env", cwd=root)
    # This process's pip installs into it (pip >= 22.3): quicker than bootstrapping a pip inside every venv.
    _run(
        sys.executable, "-m", "pip", "--python", root / "env" / "bin" / "python", "install", "--quiet", wheel, cwd=root
    )
    return root / "env"


@pytest.fixture
def user_dir(tmp_path: Path) -> Path:
    """Where the user works: outside the checkout, so nothing can be imported from it."""
    assert ROOT not in tmp_path.parents
    return tmp_path


def test_installed_package_is_the_wheel(venv: Path, user_dir: Path) -> None:
    version = _run(venv / "bin" / "anvil-dev", "--version", cwd=user_dir).stdout
    assert version.strip() == f"anvil-dev, version {__version__}"
    code = "import anvil_dev, pathlib; print(pathlib.Path(anvil_dev.__file__).parent)"
    package = Path(_run(venv / "bin" / "python", "-c", code, cwd=user_dir).stdout.strip())
    assert venv in package.parents, f"anvil_dev was imported from {package}, not from the venv"
    missing = [f for f in SHIPPED if not (package / f).is_file()]
    assert not missing, f"not installed: {missing}"


@pytest.fixture
def served_app(venv: Path, user_dir: Path) -> Iterator[str]:
    """`anvil-dev init` then `anvil-dev serve` on a free port, both from the venv; yields the server's URL."""
    _run(venv / "bin" / "anvil-dev", "init", "Feedback", cwd=user_dir)
    port = free_port()
    proc = subprocess.Popen(
        [str(venv / "bin" / "anvil-dev"), "serve", "--port", str(port)],
        cwd=user_dir / "Feedback",
        env=_clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    assert proc.stdout is not None
    out = OutputLines(proc.stdout)
    try:
        out.wait_for("Serving on", timeout=60, who="the installed anvil-dev serve")
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        finally:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
    assert "Traceback" not in out.text, out.text


def test_init_serve_call_and_pages(venv: Path, user_dir: Path, served_app: str) -> None:
    # A call that runs the template's server code through the installed runtime and its tables.
    result = _run(
        venv / "bin" / "anvil-dev",
        "call",
        "add_feedback",
        "Ann",
        "ann@example.org",
        "Nice app",
        "--url",
        served_app,
        cwd=user_dir,
    )
    assert result.stdout.strip() == "Thanks, Ann!"

    page = requests.get(served_app + "/", timeout=10)
    assert page.status_code == 200
    assert "<title>Feedback Form</title>" in page.text
    js = requests.get(served_app + "/_/anvil.js", timeout=10)
    assert js.status_code == 200
    assert js.headers["Content-Type"].startswith("text/javascript")
    assert js.content == (ROOT / "anvil_dev" / "static" / "anvil.js").read_bytes()
    console = requests.get(served_app + "/_/console", timeout=10)
    assert console.status_code == 200
    assert "<title>anvil-dev console</title>" in console.text
    assets = requests.get(served_app + "/_/console/assets/console.js", timeout=10)
    assert assets.status_code == 200
