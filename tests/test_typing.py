"""pyftp as a typed, documented library: the ``py.typed`` marker ships, the modules
annotated so far stay clean under ``mypy --strict``, and ``scripts/apidoc`` builds the
API reference without a warning."""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

import pyftp

REPO = Path(__file__).resolve().parent.parent

#: the parts of pyftp that pass ``mypy --strict`` today; when this covers all of
#: pyftp/, CI runs scripts/typecheck instead
CLEAN = ["pyftp/__init__.py", "pyftp/__main__.py", "pyftp/_version.py", "pyftp/errors.py",
         "pyftp/digests.py", "pyftp/transport.py", "pyftp/testing.py", "pyftp/protocol",
         "pyftp/client", "pyftp/sync", "pyftp/ui", "pyftp/fs", "pyftp/shell", "pyftp/cli",
         "pyftp/server"]


def test_the_package_carries_the_py_typed_marker():
    assert (Path(pyftp.__file__).parent / "py.typed").is_file()
    tomllib = pytest.importorskip("tomllib")
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    assert "py.typed" in config["tool"]["setuptools"]["package-data"]["pyftp"]


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("mypy") is None,
                    reason="mypy is not installed (pip install -e '.[typing]')")
def test_the_annotated_modules_pass_mypy_strict(tmp_path):
    # follow-imports=silent: what the modules not yet annotated say is not judged here
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent",
         "--cache-dir", str(tmp_path / "cache"), *CLEAN],
        cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr


#: a user's script, type-checked against the public API as a user would (--strict)
USER_SCRIPT = '''
from pathlib import Path

import pyftp
from pyftp import Client, NotFoundError, RemoteError, Server, ServerConfig, TransferResult
from pyftp.sync import SyncReport, mirror, put_tree
from pyftp.testing import LiveServer, start_server


def upload(folder: Path) -> int:
    with Server(ServerConfig(root=str(folder), port=0)) as server:
        host, port = server.address
        with Client(host, port) as c:
            try:
                c.put(str(folder / "a.txt"), "/a.txt")
            except NotFoundError as exc:
                print(exc.code)
            names: list[str] = [e.name for e in c.ls("/")]
            report: SyncReport = put_tree(c, folder, "/")
            return len(names) + len(report.sent) + len(mirror(c, folder, "/x").sent)


def live(tmp: Path) -> str:
    server: LiveServer = start_server(tmp)
    return server.url + pyftp.__version__


def batch(c: Client, folder: Path) -> list[str]:
    def each(index: int, done: int, total: int) -> None:
        print(index, done * 100 // max(total, 1))

    results = c.get_many([("/a.txt", folder / "a.txt")], on_bytes=each)
    got: list[str] = [r.digest for r in results if isinstance(r, TransferResult)]
    one: TransferResult = c.put(folder / "a.txt", "/b.txt", on_progress=lambda d, t: None)
    hashes: list[str | RemoteError] = c.hash_many(["/a.txt", "/b.txt"])
    features: list[str] = c.server_info.get("features", [])
    return got + [one.algorithm, str(hashes[0])] + features
'''


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("mypy") is None,
                    reason="mypy is not installed (pip install -e '.[typing]')")
def test_a_strict_users_script_type_checks_against_the_public_api(tmp_path):
    script = tmp_path / "use_pyftp.py"
    script.write_text(USER_SCRIPT, encoding="utf-8")
    # MYPYPATH: an editable install's import hook is invisible to mypy
    env = {**os.environ, "MYPYPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent",
         "--cache-dir", str(tmp_path / "cache"), str(script)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("pdoc") is None,
                    reason="pdoc is not installed (pip install -e '.[docs]')")
def test_the_api_reference_builds_without_warnings(tmp_path):
    env = {**os.environ, "APIDOC_PYTHON": sys.executable}
    proc = subprocess.run([str(REPO / "scripts" / "apidoc"), str(tmp_path)], env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "warning" not in proc.stderr
    page = (tmp_path / "pyftp.html").read_text(encoding="utf-8")
    for name in ("Client", "Server", "ServerConfig", "NotFoundError"):
        assert f'id="{name}"' in page
    for module in ("errors", "sync", "testing", "fs"):
        assert (tmp_path / "pyftp" / f"{module}.html").is_file()
