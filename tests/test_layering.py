"""The import arrows of ARCHITECTURE.md, and one handler and one method per declared op.

Read with ``ast`` (every import statement, also those inside functions), so a lazy
import cannot sneak past the layering.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

import pyftp
from pyftp.protocol import COMMANDS

PKG = Path(pyftp.__file__).parent

#: module -> the pyftp modules it may import. Modules not listed here (and present)
#: are only held to the rules that apply to everyone (nothing imports cli; rich and
#: tqdm stay in the presentation layer).
ALLOWED: dict[str, set[str] | None] = {
    "_version": set(),
    "errors": set(),
    "protocol": {"errors"},
    # storage reads files with transport's pread_into, the one positional-read helper
    "storage": {"errors", "protocol", "transport"},
    "transport": {"errors", "protocol"},
    "client": {"errors", "protocol", "transport", "storage", "_version"},
    "server": {"errors", "protocol", "transport", "storage", "_version"},
    "auth": {"errors"},
    # folder trees, globs, mirror and retries are built on the client, beside it
    "sync": {"errors", "protocol", "client"},
    "ui": {"errors", "protocol", "storage", "transport", "client", "_version", "sync"},
    "repl": {"errors", "protocol", "storage", "transport", "client", "ui", "_version", "sync"},
    "cli": None,  # the top: may import anything
}
PRESENTATION = {"ui", "repl", "cli"}
THIRD_PARTY_UI = {"rich", "tqdm"}


def modules() -> dict[str, Path]:
    return {p.stem: p for p in sorted(PKG.glob("*.py"))}


def imports_of(path: Path) -> tuple[set[str], set[str]]:
    """(pyftp modules, top-level third-party packages) a module imports anywhere."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    ours: set[str] = set()
    others: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "pyftp":
                    if len(parts) > 1:
                        ours.add(parts[1])
                else:
                    others.add(parts[0])
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                parts = (node.module or "").split(".")
                if parts[0] == "pyftp":
                    if len(parts) > 1:
                        ours.add(parts[1])
                    else:
                        ours.update(a.name for a in node.names)
                else:
                    others.add(parts[0])
            elif node.level == 1:
                if node.module:
                    ours.add(node.module.split(".")[0])
                else:  # from . import x
                    ours.update(a.name for a in node.names)
    return ours, others


def test_the_core_modules_exist():
    for name in ("errors", "protocol", "storage", "transport", "client", "server", "cli"):
        assert name in modules()


@pytest.mark.parametrize("name", sorted(ALLOWED))
def test_imports_point_down(name):
    path = modules().get(name)
    if path is None:
        pytest.skip(f"pyftp/{name}.py does not exist yet")
    allowed = ALLOWED[name]
    ours, _ = imports_of(path)
    ours.discard(name)
    if allowed is not None:
        assert ours <= allowed, f"{name} imports {sorted(ours - allowed)}; allowed: {sorted(allowed)}"


def test_client_and_server_never_import_each_other():
    assert "server" not in imports_of(modules()["client"])[0]
    assert "client" not in imports_of(modules()["server"])[0]


def test_nothing_imports_cli():
    for name, path in modules().items():
        if name in ("cli", "__main__"):
            continue  # __main__ is the ``python -m pyftp`` door into cli
        assert "cli" not in imports_of(path)[0], f"{name} imports cli"


def test_rich_and_tqdm_stay_in_the_presentation_layer():
    for name, path in modules().items():
        if name in PRESENTATION:
            continue
        _, others = imports_of(path)
        assert not (others & THIRD_PARTY_UI), f"{name} imports {sorted(others & THIRD_PARTY_UI)}"


def test_the_checker_sees_lazy_and_relative_imports(tmp_path):
    p = tmp_path / "m.py"
    p.write_text("import rich.console\nfrom . import cli\n"
                 "def f():\n    from .server import Server\n    import pyftp.client\n")
    ours, others = imports_of(p)
    assert ours == {"cli", "server", "client"} and others == {"rich"}


# ------------------------------------------------------------------ one word per op

def _class_methods(path: Path, cls_name: str) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == cls_name:
            return [n.name for n in node.body
                    if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    raise AssertionError(f"class {cls_name} not found in {path.name}")


#: ops whose client side is the connection's life cycle rather than a method
CLIENT_NAME = {"hello": "connect", "quit": "close"}


def test_every_op_has_exactly_one_server_handler_and_back():
    methods = _class_methods(modules()["server"], "Session")
    handlers = [m for m in methods if m.startswith("handle_")]
    for op in COMMANDS:
        assert handlers.count("handle_" + op) == 1, f"Session.handle_{op}: {handlers.count('handle_' + op)}"
    extra = {h[len("handle_"):] for h in handlers} - set(COMMANDS)
    assert not extra, f"handlers for undeclared ops: {sorted(extra)}"


def test_every_op_has_exactly_one_client_method():
    methods = _class_methods(modules()["client"], "Client")
    for op in COMMANDS:
        name = CLIENT_NAME.get(op, op)
        assert methods.count(name) == 1, f"Client.{name}: {methods.count(name)}"
        assert callable(getattr(pyftp.Client, name))
