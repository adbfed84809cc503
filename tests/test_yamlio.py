"""kkc.yamlio: deterministic dumping that no YAML reader misreads, and stream loading."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml  # PyYAML: a YAML 1.1 reader, the strictest test of "ambiguous" strings
from ruamel.yaml import YAML

from kkc import yamlio
from kkc.yamlio import dump, dump_all, load_stream

GOLDEN = Path(__file__).parent / "golden"
# The golden YAML files the emitter and loader tests read: site-a's and site-b's trees hold
# every kind of object and scalar kkc writes; site-a-ha's is site-a's again, bar the
# MariaDB resources, and would only double the time these tests take.
GOLDEN_FILES = sorted(p for site in ("site-a", "site-b") for p in (GOLDEN / site).rglob("*.yaml"))

AMBIGUOUS = [
    "on",
    "off",
    "On",
    "OFF",
    "yes",
    "no",
    "Yes",
    "NO",
    "y",
    "n",
    "Y",
    "true",
    "False",
    "null",
    "Null",
    "~",
    "",
    "1.30",
    "1.31",
    "0755",
    "0o17",
    "0x1F",
    "0b101",
    "1e3",
    "1_000",
    "12:30",
    "+1",
    "-0",
    "1.",
    ".5",
    ".inf",
    "-.inf",
    ".NaN",
    "3",
]


@pytest.mark.parametrize("value", AMBIGUOUS)
def test_ambiguous_strings_are_double_quoted(value: str) -> None:
    assert dump({"v": value}) == f'v: "{value}"\n'


@pytest.mark.parametrize(
    "value",
    [
        *AMBIGUOUS,
        "2025-01-01",
        "=",
        "<<",
        "a: b",
        "- x",
        "#x",
        "x #y",
        "@x",
        "*x",
        "&x",
        "!x",
        "|",
        "> x",
        "[a]",
        "{a}",
        "'q'",
        '"q"',
        "  lead",
        "trail ",
        "\ttab",
        "é",
        "%x",
    ],
)
def test_strings_read_back_as_the_same_string(value: str) -> None:
    out = dump({"v": value})
    assert yaml.safe_load(out) == {"v": value}, out  # YAML 1.1
    assert load_stream(out) == [{"v": value}], out  # YAML 1.2


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("plain", "v: plain\n"),
        ("registry.example.com/kolla", "v: registry.example.com/kolla\n"),
        ("2025.1-rocky-9", "v: 2025.1-rocky-9\n"),
        ("500m", "v: 500m\n"),
    ],
)
def test_unambiguous_strings_stay_plain(value: str, expected: str) -> None:
    assert dump({"v": value}) == expected


def test_non_strings_are_not_quoted() -> None:
    assert dump({"i": 3, "f": 1.5, "b": True, "z": None}) == "i: 3\nf: 1.5\nb: true\nz: null\n"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("line1\nline2\n", "v: |\n  line1\n  line2\n"),
        ("line1\nline2", "v: |-\n  line1\n  line2\n"),
        ("[database]\nconnection = x\n", "v: |\n  [database]\n  connection = x\n"),
        ("null\n", "v: |\n  null\n"),
    ],
)
def test_multiline_strings_are_block_literals(value: str, expected: str) -> None:
    out = dump({"v": value})
    assert out == expected
    assert yaml.safe_load(out) == {"v": value}


@pytest.mark.parametrize(
    "value", ["  indented\nblock\n", "\nleading newline", "a\n\n\nb\n", "x\ny  \n"]
)
def test_awkward_multiline_strings_round_trip(value: str) -> None:
    out = dump({"v": value})
    assert yaml.safe_load(out) == {"v": value}, out
    assert load_stream(out) == [{"v": value}], out


def test_key_order_is_preserved() -> None:
    data = {"zeta": 1, "alpha": {"y": 2, "b": [3, {"k2": 1, "k1": 2}]}, "mid": "x"}
    assert dump(data) == ('zeta: 1\nalpha:\n  "y": 2\n  b:\n  - 3\n  - k2: 1\n    k1: 2\nmid: x\n')
    assert list(load_stream(dump(data))[0]) == ["zeta", "alpha", "mid"]


def test_dump_is_deterministic_and_block_style() -> None:
    data = {"metadata": {"name": "x", "labels": {"a": "1", "b": "on"}}, "list": [], "map": {}}
    out = dump(data)
    assert out == dump(data)
    assert out == ('metadata:\n  name: x\n  labels:\n    a: "1"\n    b: "on"\nlist: []\nmap: {}\n')


def test_long_strings_are_not_folded() -> None:
    value = "word " * 200 + "end"
    out = dump({"v": value})
    assert out.count("\n") == 1
    assert yaml.safe_load(out) == {"v": value}


def test_dump_all_and_load_stream_round_trip() -> None:
    docs = [{"kind": "A", "count": 1}, {"kind": "B", "s": "yes", "m": "a\nb\n"}]
    text = dump_all(docs)
    assert text == 'kind: A\ncount: 1\n---\nkind: B\ns: "yes"\nm: |\n  a\n  b\n'
    assert load_stream(text) == docs


def test_load_stream_skips_empty_documents_and_returns_plain_data() -> None:
    text = "---\na: 1\n---\n---\n# only a comment\n---\nb: [x, 2]\nc: 2025-01-01\n...\n"
    docs = load_stream(text)
    assert docs == [{"a": 1}, {"b": ["x", 2], "c": docs[1]["c"]}]
    assert type(docs[0]) is dict and type(docs[1]["b"]) is list
    assert str(docs[1]["c"]) == "2025-01-01"


def test_load_stream_empty() -> None:
    assert load_stream("") == []
    assert load_stream("---\n...\n") == []


# (plain scalar, what load_stream makes of it): YAML 1.2's core schema, as ruamel.yaml's safe
# loader (the reader load_stream replaced) and Kubernetes read it; a YAML 1.1 reader would
# take the first ones for booleans, octal or sexagesimal numbers
MACHINE_SCALARS = [
    ("yes", "yes"),
    ("no", "no"),
    ("on", "on"),
    ("Off", "Off"),
    ("y", "y"),
    ("1:20", "1:20"),
    ("1:20.5", "1:20.5"),
    ("017", 17),
    ("09", 9),
    ("0o17", 15),
    ("-0o17", -15),
    ("0x1F", 31),
    ("+0x10", 16),
    ("0b101", 5),
    ("-0b11", -3),
    ("1_000", 1000),
    ("-0", 0),
    ("1e3", 1000.0),
    ("1.0e+3", 1000.0),
    ("-1_0.5_0", -10.5),
    (".5", 0.5),
    ("-.inf", float("-inf")),
    ("12e", "12e"),
    ("0o", "0o"),
    ("0x", "0x"),
    ("true", True),
    ("TRUE", True),
    ("False", False),
    ("tRue", "tRue"),
    ("~", None),
    ("null", None),
    ("", None),
    ('"017"', "017"),
    # kept as strings: ruamel.yaml made date/datetime objects of timestamps and refused `=`
    ("2024-01-01", "2024-01-01"),
    ("2024-01-01T10:00:00Z", "2024-01-01T10:00:00Z"),
    ("=", "="),
    ("<<", "<<"),
]


@pytest.mark.parametrize(("plain", "expected"), MACHINE_SCALARS)
def test_load_stream_reads_scalars_as_yaml_1_2(plain: str, expected: object) -> None:
    [doc] = load_stream(f"v: {plain}\n")
    assert doc == {"v": expected} and type(doc["v"]) is type(expected)


def test_load_stream_matches_ruamel_on_everything_ruamel_can_represent() -> None:
    """The C loader reads every scalar of the table and every golden tree's YAML file as
    ruamel.yaml's safe loader does (bar the timestamp, `=` and `<<` rows, which ruamel
    turns into dates or refuses)."""
    ruamel = YAML(typ="safe", pure=True)
    for plain, _expected in MACHINE_SCALARS[:-4]:
        assert load_stream(f"v: {plain}\n") == [ruamel.load(f"v: {plain}\n")], plain
    assert len(GOLDEN_FILES) > 100
    for path in GOLDEN_FILES:
        text = path.read_text(encoding="utf-8")
        expected = [d for d in ruamel.load_all(text) if d is not None]
        assert load_stream(text) == expected, path


def test_load_stream_merges_keys_and_keeps_the_last_duplicate() -> None:
    text = "base: &b {x: 1, y: 2}\nderived:\n  <<: *b\n  y: 3\n"
    assert load_stream(text) == [{"base": {"x": 1, "y": 2}, "derived": {"x": 1, "y": 3}}]
    assert load_stream("a: 1\na: 2\n") == [{"a": 2}]


def test_the_pure_python_emitter_writes_the_same_bytes_as_libyaml() -> None:
    """dump() uses libyaml's emitter where PyYAML has it and PyYAML's own elsewhere: the
    generated files must not depend on which one a machine has."""

    class Pure(yaml.SafeDumper):
        pass

    for kind, represent in yamlio._Dumper.yaml_representers.items():
        Pure.add_representer(kind, represent)
    for kind, represent in yamlio._Dumper.yaml_multi_representers.items():
        Pure.add_multi_representer(kind, represent)
    docs = [
        doc
        for path in GOLDEN_FILES
        for doc in yaml.safe_load_all(path.read_text())
        if doc is not None
    ]
    assert len(docs) > 300
    pure = [yaml.dump(d, Dumper=Pure, **yamlio.DUMP_OPTIONS) for d in docs]
    assert pure == [yamlio.dump(d) for d in docs]
