"""Byte-preserving edits of a site definition's text (`kkc upgrade`, `kkc set`, `kkc init
--from`): every byte but the value set stays as it was, comments and layout included.

Positions come from ruamel's round-trip loader; the edit itself is done on the text: a value
already there is replaced where it stands; a missing key is added at the end of the deepest
block mapping on its path (with the mappings below it), or at the end of the file."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from . import writer
from .errors import InputError, Problem

# one scalar token where a value starts: quoted, or plain up to a comment (block style) or
# up to the next separator (flow style)
_BLOCK_TOKEN = re.compile(r"""("(?:[^"\\]|\\.)*"|'(?:[^']|'')*'|[^#\n]*?)(?=\s+#|\s*$)""")
_FLOW_TOKEN = re.compile(r"""("(?:[^"\\]|\\.)*"|'(?:[^']|'')*'|[^,}\]\n#]*[^,}\]\s#])""")


def parse(text: str) -> Any:
    return YAML(typ="rt").load(text)


def _refuse(display: str, at: tuple[int, int], code: str, message: str) -> InputError:
    return InputError(Problem(display, at[0] + 1, at[1] + 1, code, message))


def set_value(
    text: str,
    path: tuple[str, ...],
    value: str,
    display: str,
    code: str = "KKC198",
    *,
    first: bool = False,
) -> str:
    """``text`` with the key at ``path`` set to ``value`` (YAML source text of a scalar or a
    flow collection, written as given). A new key goes at the end of its mapping, or with
    ``first`` before its first key. A mapping or list in the way, or a flow-style mapping
    that would need a new key, is refused with ``code`` at its position."""
    doc: Any = parse(text)
    lines = text.splitlines(keepends=True)
    if not isinstance(doc, dict):
        raise _refuse(display, (0, 0), code, "the top level is not a mapping")
    node, depth = doc, 0
    while depth < len(path) - 1 and isinstance(node.get(path[depth]), dict):
        node, depth = node[path[depth]], depth + 1
    key = path[depth]
    here = ".".join(path[: depth + 1])
    if key in node and depth == len(path) - 1:
        if isinstance(node[key], dict | list) and node[key]:
            raise _refuse(
                display, node.lc.key(key), code, f"{here} is a mapping or list; set its keys"
            )
        return _replace(lines, node, key, value)
    if key in node and node[key] is not None:  # a scalar where the path needs a mapping
        raise _refuse(display, node.lc.key(key), code, f"{here} is not a mapping")
    rest = path[depth:]
    if node is doc:
        tail = "" if not text or text.endswith("\n") else "\n"
        return text + tail + _block(rest, value, 0)
    if node.fa.flow_style() or not node:
        raise _refuse(
            display,
            _position(doc, path[:depth]),
            code,
            f"{'.'.join(path[:depth])}: write it as a block mapping for kkc to add {key} to it",
        )
    line, col = node.lc.key(next(iter(node)))
    end = _block_end(lines, max(node.lc.key(k)[0] for k in node), col)
    if key in node:  # a null value (`key:`, `key: ~`): the new keys go under it
        line, start, end = _null_span(lines, node, key)
        lines[line] = lines[line][:start] + lines[line][end:]
        lines.insert(line + 1, _block(rest[1:], value, col + 2))
        return "".join(lines)
    lines.insert(line if first else end, _block(rest, value, col))
    return "".join(lines)


def _position(doc: Any, path: tuple[str, ...]) -> tuple[int, int]:
    node, at = doc, (0, 0)
    for part in path:
        at = node.lc.key(part)
        node = node[part]
    return at


_NULL = re.compile(r"(?:[ \t]*(?:null|Null|NULL|~)(?=\s|$))?")


def _null_span(lines: list[str], node: Any, key: str) -> tuple[int, int, int]:
    """(line, start, end) of a null value written on its key's line: ``key:``, ``key: ~``
    or ``key: null`` (start: just after the colon)."""
    line, col = node.lc.key(key)
    text = lines[line]
    start = text.index(":", col + len(str(key))) + 1
    match = _NULL.match(text, start)
    return line, start, match.end() if match else start


def _replace(lines: list[str], node: Any, key: str, value: str) -> str:
    if node[key] is None:
        line, start, end = _null_span(lines, node, key)
        old = lines[line]
        lines[line] = old[:start] + " " + value + old[end:]
        return "".join(lines)
    line, col = node.lc.value(key)
    old = lines[line]
    token = (_FLOW_TOKEN if node.fa.flow_style() else _BLOCK_TOKEN).match(old, col)
    end = token.end() if token else col
    lines[line] = old[:col] + value + old[end:]
    return "".join(lines)


def _block_end(lines: list[str], last_key_line: int, col: int) -> int:
    """The index of the line after the last content line of a block mapping whose keys are
    at ``col`` and whose last key is on ``last_key_line``."""
    end = last_key_line + 1
    content_end = end
    while end < len(lines):
        stripped = lines[end].strip()
        indent = len(lines[end]) - len(lines[end].lstrip(" "))
        if stripped and not stripped.startswith("#"):
            if indent <= col:
                break
            content_end = end + 1
        end += 1
    if content_end == len(lines) and lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    return content_end


def _block(path: tuple[str, ...], value: str, col: int) -> str:
    out = []
    for i, part in enumerate(path[:-1]):
        out.append(f"{' ' * (col + 2 * i)}{part}:\n")
    out.append(f"{' ' * (col + 2 * (len(path) - 1))}{path[-1]}: {value}\n")
    return "".join(out)


def write_atomic(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` in one rename, keeping the file's mode (a new file
    is 0644, as an editor would make it)."""
    writer.write_file(path, text.encode("utf-8"))
