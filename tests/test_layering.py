"""The import arrows of ARCHITECTURE.md, and one handler and one method per declared op.

Read with ``ast`` (every import statement, also those inside functions), so a lazy
import cannot sneak past the layering. Imports are resolved to absolute module names,
so ``from ..errors import X`` inside ``pyftp/server/`` counts as ``pyftp.errors``.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

import pyftp
from pyftp.protocol import COMMANDS

PKG = Path(pyftp.__file__).parent

#: unit (a top-level module or package, or a sub-package named with a dot) -> the units
#: it may import. ``None``: the top, may import anything. Nothing looser than the
#: picture in docs/architecture.md.
ALLOWED: dict[str, set[str] | None] = {
    "_version": set(),
    "errors": set(),
    "records": set(),
    "hints": set(),
    "digests": set(),
    "protocol": {"errors"},
    "transport": {"errors", "protocol", "digests"},
    # the jail and the uploads: no sockets, no sessions
    "server.storage": {"errors", "protocol", "digests"},
    "server": {"errors", "protocol", "transport", "digests", "_version", "server.storage"},
    "client": {"errors", "protocol", "transport", "digests", "_version"},
    # folder trees, globs, mirror and retries are built on the client, beside it
    "sync": {"errors", "protocol", "digests", "client"},
    "ui": {"errors", "protocol", "digests", "client", "sync", "_version"},
    "shell": {"errors", "protocol", "digests", "client", "sync", "ui", "_version"},
    "cli": None,
    # the pytest plugin and the fsspec file system: users of the public API only
    "testing": {"errors", "client", "server"},
    "fs": {"errors", "protocol", "client"},
    "__main__": {"cli"},
    "__init__": {"_version", "errors", "client", "server"},
}
#: leaves below everything: any unit may import them
LEAVES = {"records", "hints"}
PRESENTATION = {"ui", "shell", "cli"}
THIRD_PARTY_UI = {"rich", "tqdm"}


def module_name(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = list(rel.parts)
    return ".".join(parts)


def unit_of(module: str) -> str:
    """pyftp.server.storage.local -> server.storage; pyftp.client.client -> client."""
    parts = module.split(".")[1:]
    if not parts:
        return "__init__"
    if parts[0] == "server" and len(parts) > 1 and parts[1] == "storage":
        return "server.storage"
    return parts[0]


def files() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PKG.rglob("*.py"))}


def imports_of(path: Path, module: str | None = None) -> tuple[set[str], set[str]]:
    """(pyftp modules as absolute names, top-level third-party packages) imported anywhere."""
    module = module or "pyftp.x"
    package = module.split(".")[:-1] if not module.endswith("__init__") else module.split(".")[:-1]
    if path.name == "__init__.py":
        package = module.split(".")[:-1]
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    ours: set[str] = set()
    others: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                (ours if alias.name.split(".")[0] == "pyftp" else others).add(
                    alias.name if alias.name.startswith("pyftp") else alias.name.split(".")[0])
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                mod = node.module or ""
                if mod.split(".")[0] == "pyftp":
                    if mod == "pyftp":
                        ours.update(f"pyftp.{a.name}" for a in node.names)
                    else:
                        ours.add(mod)
                else:
                    others.add(mod.split(".")[0])
            else:
                base = package[:len(package) - node.level + 1]
                if node.module:
                    ours.add(".".join(base + node.module.split(".")))
                else:
                    ours.update(".".join(base + [a.name]) for a in node.names)
    return ours, others


def units_imported(path: Path, module: str) -> set[str]:
    return {unit_of(m) for m in imports_of(path, module)[0]}


def test_the_packages_exist():
    for name in ("errors", "digests", "protocol", "transport", "client", "server",
                 "server.storage", "sync", "ui", "shell", "cli"):
        assert any(unit_of(m) == name for m in files()), name


@pytest.mark.parametrize("module", sorted(files()))
def test_imports_point_down(module):
    unit = unit_of(module) if not module.endswith("__main__") else "__main__"
    allowed = ALLOWED.get(unit, set())
    used = units_imported(files()[module], module)
    used.discard(unit)
    used -= LEAVES
    if allowed is not None:
        assert used <= allowed, f"{module} imports {sorted(used - allowed)}; allowed: {sorted(allowed)}"


def test_client_and_server_never_import_each_other():
    for module, path in files().items():
        used = units_imported(path, module)
        if unit_of(module) == "client":
            assert not {"server", "server.storage"} & used, module
        if unit_of(module).startswith("server"):
            assert "client" not in used, module


def test_nothing_imports_cli():
    for module, path in files().items():
        if unit_of(module) == "cli" or module.endswith("__main__"):
            continue  # __main__ is the ``python -m pyftp`` door into cli
        assert "cli" not in units_imported(path, module), f"{module} imports cli"


def test_rich_and_tqdm_stay_in_the_presentation_layer():
    for module, path in files().items():
        if unit_of(module) in PRESENTATION:
            continue
        _, others = imports_of(path, module)
        assert not (others & THIRD_PARTY_UI), f"{module} imports {sorted(others & THIRD_PARTY_UI)}"


def test_the_checker_sees_lazy_and_relative_imports(tmp_path):
    p = tmp_path / "m.py"
    p.write_text("import rich.console\nfrom .. import cli\n"
                 "def f():\n    from ..server import Server\n    import pyftp.client\n"
                 "    from .storage.local import Storage\n")
    ours, others = imports_of(p, "pyftp.server.listener")
    assert others == {"rich"}
    assert ours == {"pyftp.cli", "pyftp.server", "pyftp.client", "pyftp.server.storage.local"}
    assert {unit_of(m) for m in ours} == {"cli", "server", "client", "server.storage"}


def test_no_module_over_600_lines():
    for module, path in files().items():
        lines = len(path.read_text(encoding="utf-8").splitlines())
        assert lines <= 600, f"{module}: {lines} lines"


def test_no_class_over_400_lines_and_no_function_over_80():
    """A class past ~400 lines or a function past ~80 usually holds two jobs."""
    too_big = []
    for module, path in files().items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                lines = node.end_lineno - node.lineno + 1
                limit = 400 if isinstance(node, ast.ClassDef) else 80
                if lines > limit:
                    too_big.append(f"{module}.{node.name}: {lines} lines (limit {limit})")
    assert not too_big, too_big


# ------------------------------------------------------------------ one word per op

def _methods(unit: str, cls_name: str) -> list[str]:
    """The methods of class ``cls_name`` defined in any module of ``unit`` (with the
    methods of its bases defined in the same unit, for mixin-built classes)."""
    classes: dict[str, ast.ClassDef] = {}
    for module, path in files().items():
        if unit_of(module) != unit:
            continue
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.ClassDef):
                classes[node.name] = node
    assert cls_name in classes, f"class {cls_name} not found in {unit}"
    out: list[str] = []
    todo = [cls_name]
    seen = set()
    while todo:
        name = todo.pop()
        if name in seen or name not in classes:
            continue
        seen.add(name)
        node = classes[name]
        out += [n.name for n in node.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
        todo += [b.id for b in node.bases if isinstance(b, ast.Name)]
    return out


#: ops whose client side is the connection's life cycle rather than a method
CLIENT_NAME = {"hello": "connect", "quit": "close"}


def test_every_op_has_exactly_one_server_handler_and_back():
    methods = _methods("server", "Session")
    handlers = [m for m in methods if m.startswith("handle_")]
    for op in COMMANDS:
        assert handlers.count("handle_" + op) == 1, f"Session.handle_{op}: {handlers.count('handle_' + op)}"
    extra = {h[len("handle_"):] for h in handlers} - set(COMMANDS)
    assert not extra, f"handlers for undeclared ops: {sorted(extra)}"


def test_every_op_has_exactly_one_client_method():
    methods = _methods("client", "Client")
    for op in COMMANDS:
        name = CLIENT_NAME.get(op, op)
        assert methods.count(name) == 1, f"Client.{name}: {methods.count(name)}"
        assert callable(getattr(pyftp.Client, name))
