"""kkc's own imports flow one way: read from the source (ast over compiler/kkc), nothing of
kkc is imported or run.

- No import cycle among kkc's modules. Importing ``kkc.a.b`` from outside the package
  ``kkc.a`` runs ``kkc/a/__init__.py`` first, so it counts as importing ``kkc.a`` too.
- No kkc module is imported inside a function: an import that has to wait for the call
  hides a cycle instead of removing it.
- The site model sits at the bottom: kkc.model imports nothing of kkc but errors, yamlio
  and schema; no module of kkc imports the kkc.site face kept for callers outside it.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "compiler" / "kkc"


def _module_name(path: Path) -> str:
    parts = ["kkc", *path.relative_to(PACKAGE).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _is_package(module: str) -> bool:
    return MODULES[module].name == "__init__.py"


def _imported(module: str, node: ast.Import | ast.ImportFrom) -> list[str]:
    """The kkc modules that ``node`` (in ``module``) imports: for ``from X import a``, X
    and each ``X.a`` that is a module."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name == "kkc" or a.name.startswith("kkc.")]
    if node.level:  # relative: from the module's package, up level - 1
        package = module if _is_package(module) else module.rpartition(".")[0]
        base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
        target = ".".join([*base, *([node.module] if node.module else [])])
    else:
        target = node.module or ""
    if target != "kkc" and not target.startswith("kkc."):
        return []
    return [target, *(f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in MODULES)]


def _with_parents(importer: str, target: str) -> list[str]:
    """``target`` and the packages above it that importing it runs, but for the packages
    that hold ``importer`` (already running when it is imported)."""
    out = [target]
    parts = target.split(".")
    for depth in range(2, len(parts)):
        parent = ".".join(parts[:depth])
        if not importer.startswith(parent + ".") and importer != parent:
            out.append(parent)
    return out


def _imports() -> tuple[dict[str, set[str]], list[str]]:
    """Module -> the kkc modules its module-level code imports; and every import of a kkc
    module inside a function, as ``path:line: import``."""
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    nested: list[str] = []
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(), str(path))
        in_function: set[int] = set()
        for fn in ast.walk(tree):
            if isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                in_function.update(id(n) for n in ast.walk(fn) if n is not fn)
        for node in ast.walk(tree):
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            targets = [
                t
                for t in _imported(module, node)
                if t in MODULES and t != module and not module.startswith(f"{t}.")
            ]  # a package that holds the module runs already
            if not targets:
                continue
            if id(node) in in_function:
                rel = path.relative_to(ROOT).as_posix()
                nested.append(f"{rel}:{node.lineno}: {ast.unparse(node)}")
            for target in targets:
                graph[module].update(t for t in _with_parents(module, target) if t != module)
    return graph, nested


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _path(graph: dict[str, set[str]], start: str, members: set[str]) -> list[str]:
    """One loop through ``start`` inside a cycle, for the failure message."""
    trail, seen = [start], {start}
    while True:
        nxt = sorted(graph[trail[-1]] & members)
        if start in nxt and len(trail) > 1:
            return [*trail, start]
        step = next((n for n in nxt if n not in seen), None)
        if step is None:
            return [*trail, start]
        trail.append(step)
        seen.add(step)


def test_the_package_is_read_whole() -> None:
    assert {"kkc", "kkc.model", "kkc.loader", "kkc.services", "kkc.cli"} <= set(MODULES)


def test_no_import_cycle() -> None:
    graph, _ = _imports()
    loops = [" -> ".join(_path(graph, c[0], set(c))) for c in _cycles(graph)]
    assert loops == []


def test_no_kkc_import_inside_a_function() -> None:
    assert _imports()[1] == []


def test_the_model_is_the_bottom() -> None:
    graph, _ = _imports()
    assert graph["kkc.model"] <= {"kkc.errors", "kkc.yamlio", "kkc.schema"}


def test_nothing_inside_kkc_imports_the_face_for_callers_outside() -> None:
    graph, _ = _imports()
    assert sorted(m for m, targets in graph.items() if "kkc.site" in targets) == []


def test_a_cycle_and_a_nested_import_are_seen(tmp_path: Path, monkeypatch) -> None:
    """The walk itself: two modules that import each other (one through its package's
    face, one inside a function) are a cycle and a nested import."""
    pkg = tmp_path / "kkc"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "low.py").write_text("from .sub.mod import thing\n")
    (pkg / "sub" / "__init__.py").write_text("from .mod import thing\n")
    (pkg / "sub" / "mod.py").write_text("def thing():\n    from ..low import x\n")
    here = sys.modules[__name__]
    monkeypatch.setattr(here, "ROOT", tmp_path)
    monkeypatch.setattr(here, "PACKAGE", pkg)
    monkeypatch.setattr(here, "MODULES", {_module_name(p): p for p in sorted(pkg.rglob("*.py"))})
    graph, nested = _imports()
    assert graph["kkc.low"] == {"kkc.sub", "kkc.sub.mod"}
    assert nested == ["kkc/sub/mod.py:2: from ..low import x"]
    graph["kkc.sub.mod"].add("kkc.low")  # as if the import were at the top
    assert _cycles(graph) == [["kkc.low", "kkc.sub", "kkc.sub.mod"]]


# the one module that may spell a warning's prefix: it formats every finding
REPORT_MODULE = "kkc.report"


def _warning_literals(modules: dict[str, Path]) -> list[str]:
    """Each string literal (f-string parts included) outside kkc.report that holds the
    ``warning: `` prefix of a warning's line: a checker that formats its own lines."""
    found = []
    for module, path in sorted(modules.items()):
        if module == REPORT_MODULE:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                if "warning: " in node.value:
                    found.append(f"{path.relative_to(path.parents[1])}:{node.lineno}")
    return found


def test_only_the_report_formats_warning_lines() -> None:
    """Checkers return kkc.errors.Problem objects (severity "warning"); the text of a
    warning, ``warning: path:line:col: CODE message``, is made in kkc.report alone."""
    assert REPORT_MODULE in MODULES
    assert _warning_literals(MODULES) == []


def test_a_formatted_warning_line_is_seen(tmp_path: Path) -> None:
    pkg = tmp_path / "kkc"
    pkg.mkdir()
    (pkg / "lint.py").write_text('def f(p):\n    return [f"warning: {p}", "x"]\n')
    (pkg / "report.py").write_text('PREFIX = "warning: "\n')
    modules = {"kkc.lint": pkg / "lint.py", "kkc.report": pkg / "report.py"}
    assert _warning_literals(modules) == ["kkc/lint.py:2"]
