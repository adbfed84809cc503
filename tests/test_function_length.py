"""No function in compiler/ is longer than 80 lines without saying why.

The convention: a function of more than ``LIMIT`` lines (from its ``def`` line to its last
line, decorators not counted) carries a comment ``# long: <why>`` between its signature
and its first statement, i.e. directly under the ``def`` line(s), above the docstring::

    def render(site):
        # long: one template of the whole file; splitting it would scatter its lines
        \"\"\"...\"\"\"

Anything else (a long function without that comment, an empty ``# long:``) is listed by
:func:`long_functions` and fails the test below. Only kkc's own sources are read.
"""

from __future__ import annotations

import ast
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
COMPILER = PROJECT / "compiler"
LIMIT = 80
MARK = "# long:"


def _justified(lines: list[str], node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """A ``# long: <why>`` line between the ``def`` and the first statement."""
    for line in lines[node.lineno - 1 : node.body[0].lineno - 1]:
        text = line.strip()
        if text.startswith(MARK) and text[len(MARK) :].strip():
            return True
    return False


def long_functions(source: str, limit: int = LIMIT) -> list[tuple[str, int, int]]:
    """(name, line, length) of every function of ``source`` longer than ``limit`` lines
    without a ``# long:`` justification, nested functions included."""
    lines = source.splitlines()
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            length = node.end_lineno - node.lineno + 1
            if length > limit and not _justified(lines, node):
                found.append((node.name, node.lineno, length))
    return sorted(found, key=lambda f: f[1])


def _unjustified() -> dict[tuple[str, str], str]:
    out = {}
    for path in sorted(COMPILER.rglob("*.py")):
        rel = path.relative_to(COMPILER).as_posix()
        for name, line, length in long_functions(path.read_text(encoding="utf-8")):
            out[(rel, name)] = f"compiler/{rel}:{line}: {name}() has {length} lines"
    return out


def test_no_function_over_80_lines_without_a_reason() -> None:
    found = list(_unjustified().values())
    assert found == [], (
        f"functions longer than {LIMIT} lines: split them, or put `{MARK} <why>` directly "
        "under the def line"
    )


def _function(lines: int, comment: str = "") -> str:
    """A function of ``lines`` lines (3 of signature, a docstring), plus ``comment``."""
    body = "".join(f"    x{i} = {i}\n" for i in range(lines - 4))
    return f"def f(\n    a,\n):\n{comment}" + '    """Doc."""\n' + body


def test_the_check_counts_lines_and_reads_the_comment() -> None:
    assert long_functions(_function(80)) == []
    assert long_functions(_function(81)) == [("f", 1, 81)]
    assert long_functions(_function(81, "    # long: one table of cases\n")) == []
    assert long_functions(_function(81, "    # long:\n")) == [("f", 1, 82)]
    # the comment must come before the first statement, not somewhere in the body
    late = _function(81).replace('    """Doc."""\n', '    """Doc."""\n    # long: late\n')
    assert long_functions(late) == [("f", 1, 82)]
    nested = "def outer():\n" + "".join(f"    {line}\n" for line in _function(81).splitlines())
    assert [name for name, _, _ in long_functions(nested)] == ["outer", "f"]
