"""Safe YAML loading with locations, and deterministic YAML dumping.

Input files are loaded with ruamel.yaml's round-trip loader so every key keeps its line
and column. Before composing, the event stream is measured so that an alias bomb is
refused quickly (few events, exponential expansion).
"""

from __future__ import annotations

import copy
import functools
import io
import re
from pathlib import Path
from typing import Any

import yaml as pyyaml
from ruamel.yaml import YAML
from ruamel.yaml.constructor import DuplicateKeyError
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import (
    AliasEvent,
    CollectionEndEvent,
    CollectionStartEvent,
    NodeEvent,
)
from ruamel.yaml.nodes import MappingNode, SequenceNode

from .errors import InputError, Problem

MAX_FILE_BYTES = 1024 * 1024
MAX_ALIASES = 100
MAX_EXPANDED_NODES = 100_000


def _problem(path: str, line: int, col: int, code: str, msg: str) -> InputError:
    return InputError(Problem(path, line, col, code, msg))


def read_text(path: Path, display: str) -> str:
    """Read a small UTF-8 text file or raise a located InputError."""
    try:
        if not path.is_file():
            raise _problem(display, 1, 1, "KKC100", "not a regular file")
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise _problem(
                display, 1, 1, "KKC106", f"file is {size} bytes; the limit is {MAX_FILE_BYTES}"
            )
        data = path.read_bytes()
    except OSError as exc:
        raise _problem(display, 1, 1, "KKC100", f"cannot read file: {exc.strerror}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = data[: exc.start]
        line = before.count(b"\n") + 1
        col = exc.start - (before.rfind(b"\n") + 1) + 1
        raise _problem(
            display, line, col, "KKC104", f"file is not valid UTF-8 (byte 0x{data[exc.start]:02x})"
        ) from None


def _check_aliases(yaml: YAML, text: str, display: str) -> None:
    """Count aliases and the size the document would have once aliases are expanded."""
    if "*" not in text and len(text) < MAX_EXPANDED_NODES:
        return  # no alias, and every node takes at least one character: nothing to count
    anchors: dict[str, int] = {}
    stack: list[list[Any]] = []  # [anchor, size]
    aliases = 0
    total = 0
    for event in yaml.parse(io.StringIO(text)):
        if isinstance(event, AliasEvent):
            aliases += 1
            size = anchors.get(event.anchor, 1)
            if aliases > MAX_ALIASES or size > MAX_EXPANDED_NODES:
                mark = event.start_mark
                raise _problem(
                    display,
                    mark.line + 1,
                    mark.column + 1,
                    "KKC103",
                    f"too many YAML aliases (limit {MAX_ALIASES} aliases, "
                    f"{MAX_EXPANDED_NODES} nodes once expanded)",
                )
            if stack:
                stack[-1][1] += size
            else:
                total += size
        elif isinstance(event, CollectionStartEvent):
            stack.append([event.anchor, 1])
        elif isinstance(event, CollectionEndEvent):
            anchor, size = stack.pop()
            if anchor:
                anchors[anchor] = size
            if stack:
                stack[-1][1] += size
            else:
                total += size
        elif isinstance(event, NodeEvent):  # scalar
            if event.anchor:
                anchors[event.anchor] = 1
            if stack:
                stack[-1][1] += 1
            else:
                total += 1
        if stack and stack[-1][1] > MAX_EXPANDED_NODES or total > MAX_EXPANDED_NODES:
            mark = event.start_mark
            raise _problem(
                display,
                mark.line + 1,
                mark.column + 1,
                "KKC103",
                f"document expands to more than {MAX_EXPANDED_NODES} nodes (alias bomb?)",
            )


def _first_duplicate(yaml: YAML, text: str) -> tuple[str, Any, Any]:
    """(key, mark of its first occurrence, mark of the duplicate), from the node graph."""
    stack = [yaml.compose(io.StringIO(text))]
    while stack:
        node = stack.pop()
        if isinstance(node, MappingNode):
            seen: dict[str, Any] = {}
            for key_node, value_node in node.value:
                key = str(key_node.value)
                if key in seen:
                    return key, seen[key], key_node.start_mark
                seen[key] = key_node.start_mark
                stack.append(value_node)
        elif isinstance(node, SequenceNode):
            stack.extend(node.value)
    raise AssertionError("DuplicateKeyError without a duplicate key")


def load_mapping(path: Path, display: str) -> Any:
    """Load one YAML document that must be a mapping; returns a ruamel CommentedMap."""
    return parse_mapping(read_text(path, display), display)


def parse_mapping(text: str, display: str) -> Any:
    """:func:`load_mapping` of a text already read (or not yet written: `kkc set`).

    The same text is parsed once per process (kkc's own defaults.yaml is read by every
    site load; ruamel's round-trip parser takes about 40 ms for it): callers get a deep
    copy, positions and comments included, which they may change."""
    return copy.deepcopy(_parse_mapping(text, display))


# Enough for the files every site load reads (kkc's defaults, the fleet's, the overlays'),
# which stay the most recently used: each site's own files take a place only for a while
# (about 100 KB each), so that a fleet's command does not grow with the fleet.
@functools.lru_cache(maxsize=32)
def _parse_mapping(text: str, display: str) -> Any:
    if not text.strip() or all(
        not ln.strip() or ln.lstrip().startswith("#") for ln in text.splitlines()
    ):
        raise _problem(display, 1, 1, "KKC105", "file is empty")
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    try:
        _check_aliases(yaml, text, display)
        docs = list(yaml.load_all(text))
    except DuplicateKeyError:
        key, first, dup = _first_duplicate(yaml, text)
        raise _problem(
            display,
            dup.line + 1,
            dup.column + 1,
            "KKC102",
            f'duplicate key "{key}" (first defined at line {first.line + 1})',
        ) from None
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        what = exc.problem or exc.context or "invalid YAML"
        raise _problem(
            display,
            (mark.line + 1) if mark else 1,
            (mark.column + 1) if mark else 1,
            "KKC101",
            f"YAML syntax error: {what}",
        ) from None
    except YAMLError as exc:
        raise _problem(display, 1, 1, "KKC101", f"YAML error: {exc}") from None
    if len(docs) != 1:
        raise _problem(display, 1, 1, "KKC107", f"expected one YAML document, found {len(docs)}")
    doc = docs[0]
    if doc is None:
        raise _problem(display, 1, 1, "KKC105", "file is empty")
    if not isinstance(doc, dict):
        raise _problem(display, 1, 1, "KKC107", "top level must be a mapping")
    return doc


def to_plain(node: Any) -> Any:
    """Turn ruamel round-trip containers into plain dicts, lists and scalars."""
    if isinstance(node, dict):
        return {str(k): to_plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [to_plain(v) for v in node]
    if isinstance(node, bool) or node is None:
        return node
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, str):
        return str(node)
    return node


# Plain scalars that a YAML 1.1 reader (or a human) could take for something other than
# a string: these are always written quoted.
_AMBIGUOUS = re.compile(
    r"^(?:y|Y|yes|Yes|YES|n|N|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF"
    r"|~|null|Null|NULL|[-+]?[0-9_.:]+(?:[eE][-+]?[0-9]+)?|0[xob][0-9a-fA-F_]+|[-+]?\.(?:inf|Inf|INF)"
    r"|\.(?:nan|NaN|NAN))$"
)


def _represent_str(representer: Any, value: str) -> Any:
    if "\n" in value and not value.endswith((" ", "\t")):
        return representer.represent_scalar("tag:yaml.org,2002:str", value, style="|")
    if value == "" or _AMBIGUOUS.match(value):
        return representer.represent_scalar("tag:yaml.org,2002:str", value, style='"')
    return representer.represent_scalar("tag:yaml.org,2002:str", value)


class _Dumper(getattr(pyyaml, "CSafeDumper", pyyaml.SafeDumper)):  # type: ignore[misc]
    """libyaml's C emitter (about 8 times faster than PyYAML's own, the same text but for
    the indentation of sequences, which it writes under their key as kubectl and kustomize
    do: ``key:\n- item``), with kkc's string styles. PyYAML's pure emitter, the fallback
    where libyaml is missing, writes the same bytes."""


_Dumper.add_representer(str, _represent_str)
_Dumper.add_multi_representer(str, _represent_str)
_Dumper.add_multi_representer(dict, pyyaml.SafeDumper.represent_dict)
_Dumper.add_multi_representer(list, pyyaml.SafeDumper.represent_list)


DUMP_OPTIONS: dict[str, Any] = {
    "default_flow_style": False,
    "sort_keys": False,
    "allow_unicode": True,
    "width": 4096,
    "indent": 2,
}


def dump(data: Any) -> str:
    """Deterministic block-style YAML (keys in the order given; callers sort if needed)."""
    return pyyaml.dump(data, Dumper=_Dumper, **DUMP_OPTIONS)


def dump_all(docs: list[Any]) -> str:
    return "---\n".join(dump(d) for d in docs)


class _MachineLoader(getattr(pyyaml, "CSafeLoader", pyyaml.SafeLoader)):  # type: ignore[misc]
    """libyaml's C parser with the YAML 1.2 core schema, as ruamel.yaml's safe loader reads
    it (true/false only; 0o17 octal, 017 decimal; no sexagesimal numbers), except that
    timestamps, ``=`` and ``<<`` values stay strings, as Kubernetes reads them (ruamel
    builds datetime objects, which the object digests cannot serialise, and refuses the
    other two). ``<<`` as a key is still a merge. Duplicate keys: the last one wins."""

    yaml_implicit_resolvers: dict[Any, Any] = {}


for _tag, _pattern, _first in (
    ("bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    (
        "float",
        r"^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)"
        r"|[-+]?\.[0-9_]+(?:[eE][-+][0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
        "-+0123456789.",
    ),
    (
        "int",
        r"^(?:[-+]?0b[0-1_]+|[-+]?0o?[0-7_]+|[-+]?[0-9_]+|[-+]?0x[0-9a-fA-F_]+)$",
        "-+0123456789",
    ),
    ("merge", r"^(?:<<)$", "<"),
    ("null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
):
    _MachineLoader.add_implicit_resolver(
        f"tag:yaml.org,2002:{_tag}", re.compile(_pattern), list(_first)
    )


def _construct_int(loader: Any, node: Any) -> int:
    text = loader.construct_scalar(node).replace("_", "")
    sign = -1 if text.startswith("-") else 1
    digits = text.lstrip("+-")
    for prefix, base in (("0b", 2), ("0x", 16), ("0o", 8)):
        if digits.startswith(prefix):
            return sign * int(digits[2:], base)
    return sign * int(digits)


_MachineLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)
_MachineLoader.add_constructor("tag:yaml.org,2002:merge", _MachineLoader.construct_yaml_str)


def load_stream(text: str) -> list[Any]:
    """Parse trusted multi-document YAML that a machine wrote (kustomize's output, kkc's
    own files, upstream CRDs) into plain data, with libyaml's C parser: ruamel.yaml's
    pure-Python parser took about half of a site build. Files people write are read with
    :func:`load_mapping`, which keeps positions."""
    return [d for d in pyyaml.load_all(text, Loader=_MachineLoader) if d is not None]
