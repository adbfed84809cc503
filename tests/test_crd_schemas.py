"""The embedded CRD schemas: tools/gen-crd-schemas (on CRDs written in tmp_path, never on
the project's CRD source directory), the data kkc loads from it, and what `kkc doctor`
says about them."""

from __future__ import annotations

import copy
import gzip
import importlib.machinery
import importlib.util
import json
from pathlib import Path

import pytest

from conftest import PROJECT
from helpers import STRICT_EXTERNAL_SECRET_CRD, WIDGET_CRD, crd_yaml, object_schema, write
from kkc import report, validate

COMMIT = "0123456789abcdef0123456789abcdef01234567"
GADGET_SPEC = {
    "type": "object",
    "description": "what a gadget does",
    "required": ["colour"],
    "properties": {
        "colour": {"type": "string", "enum": ["red", "blue"], "description": "its colour"},
        # a property called "description" is a schema, not an annotation: it stays
        "description": {"type": "string", "description": "free text"},
        "parts": {
            "type": "array",
            "items": {"type": "object", "description": "one part", "properties": {}},
        },
    },
}


def gen_tool():
    path = PROJECT / "tools" / "gen-crd-schemas"
    loader = importlib.machinery.SourceFileLoader("gen_crd_schemas", str(path))
    spec = importlib.util.spec_from_loader("gen_crd_schemas", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def gadget_crd() -> str:
    """Gadget with v1 and v2 served and v0 not served (storage v1)."""
    text = crd_yaml(
        "example.com",
        "Gadget",
        {
            "v1": object_schema(GADGET_SPEC),
            "v2": object_schema({**GADGET_SPEC, "required": ["colour", "parts"]}),
            "v0": object_schema({"type": "object"}),
        },
    )
    text = text.replace(
        "  name: gadgets.example.com\n",
        "  name: gadgets.example.com\n  labels:\n    app.kubernetes.io/version: v1.2.3\n",
    )
    # v0 is neither served nor the storage version
    head, v0 = text.split("  - name: v0\n")
    return head + "  - name: v0\n" + v0.replace("served: true", "served: false", 1)


@pytest.fixture
def crds(tmp_path: Path) -> Path:
    src = tmp_path / "crds"
    write(src, "gadgets.yaml", gadget_crd())
    write(src, "widgets.yaml", WIDGET_CRD)
    write(
        src,
        "SOURCES.md",
        "# CRDs\n\n| file | upstream repository | path | commit |\n| --- | --- | --- | --- |\n"
        f"| gadgets.yaml | example/gadget-operator | config/crd/gadgets.yaml | {COMMIT} |\n"
        f"| widgets.yaml | example/widget-operator | crds/widgets.yaml | {'f' * 40} |\n",
    )
    return src


def generate(crds: Path, out: Path, *extra: str) -> int:
    return gen_tool().main(["--crds", str(crds), "--out", str(out), *extra])


def test_generator_output_is_deterministic(crds: Path, tmp_path: Path, capsys) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    assert generate(crds, one) == 0
    first = {p.name: p.read_bytes() for p in sorted(one.iterdir())}
    assert sorted(first) == [
        "example_gadget-operator.json.gz",
        "example_widget-operator.json.gz",
        "index.json",
    ]
    assert generate(crds, one) == 0  # again, in place
    assert generate(crds, two) == 0  # and elsewhere
    assert {p.name: p.read_bytes() for p in sorted(one.iterdir())} == first
    assert {p.name: p.read_bytes() for p in sorted(two.iterdir())} == first
    for name, data in first.items():
        if name.endswith(".gz"):
            assert data[4:8] == b"\0\0\0\0", name  # gzip mtime 0
    assert generate(crds, one, "--check") == 0
    (one / "index.json").write_text("{}\n")
    (one / "stale.json.gz").write_bytes(b"")
    assert generate(crds, one, "--check") == 1
    err = capsys.readouterr().err
    assert err == f"out of date: {one / 'index.json'}\nout of date: {one / 'stale.json.gz'}\n"
    assert generate(crds, one) == 0
    assert {p.name: p.read_bytes() for p in sorted(one.iterdir())} == first  # stale removed


def test_generator_keeps_every_served_version_without_descriptions(
    crds: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    assert generate(crds, out) == 0
    index = json.loads((out / "index.json").read_text())
    assert index["controllers"]["example_gadget-operator"] == {
        "repository": "example/gadget-operator",
        "commit": COMMIT,
        "version": "v1.2.3",  # from the app.kubernetes.io/version label
        "file": "example_gadget-operator.json.gz",
    }
    assert index["controllers"]["example_widget-operator"]["version"] is None
    assert [(k["group"], k["version"], k["kind"], k["controller"]) for k in index["kinds"]] == [
        ("example.com", "v1", "Gadget", "example_gadget-operator"),
        ("example.com", "v2", "Gadget", "example_gadget-operator"),
        ("example.com", "v1", "Widget", "example_widget-operator"),
    ]
    data = json.loads(gzip.decompress((out / "example_gadget-operator.json.gz").read_bytes()))
    [crd] = data["crds"]
    assert (crd["kind"], crd["plural"], crd["scope"], crd["file"], crd["path"]) == (
        "Gadget",
        "gadgets",
        "Namespaced",
        "gadgets.yaml",
        "config/crd/gadgets.yaml",
    )
    assert [v["name"] for v in crd["versions"]] == ["v1", "v2"]  # v0 is not served
    spec = crd["versions"][0]["schema"]["properties"]["spec"]
    expected = copy.deepcopy(GADGET_SPEC)
    del expected["description"]
    del expected["properties"]["colour"]["description"]
    del expected["properties"]["description"]["description"]
    del expected["properties"]["parts"]["items"]["description"]
    assert spec == expected
    assert "description" in spec["properties"]
    assert crd["versions"][1]["schema"]["properties"]["spec"]["required"] == ["colour", "parts"]


def test_generator_refuses_a_file_without_its_source(crds: Path, tmp_path: Path, capsys) -> None:
    write(crds, "extra.yaml", STRICT_EXTERNAL_SECRET_CRD)
    assert generate(crds, tmp_path / "out") == 2
    assert capsys.readouterr().err == (
        f"gen-crd-schemas: {crds}/SOURCES.md: no row for extra.yaml\n"
    )
    assert not (tmp_path / "out").exists()


def test_kkc_validates_with_what_the_generator_writes(
    crds: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    assert generate(crds, out) == 0
    caches = (
        validate.embedded_index,
        validate._embedded_controller,
        validate._embedded_kinds,
        validate._embedded_validator,
    )
    for fn in caches:
        fn.cache_clear()
    monkeypatch.setattr(validate, "_data_dir", lambda: out)
    try:
        gadget = {
            "apiVersion": "example.com/v2",
            "kind": "Gadget",
            "metadata": {"name": "g"},
            "spec": {"colour": "red"},
        }
        problems, warnings = validate.validate_objects([gadget], "1.31", None, "d")
        assert warnings == []
        assert [str(p) for p in problems] == [
            "d:1:1: KKC302 Gadget/g: spec: 'parts' is a required property"
        ]
        v1 = {**gadget, "apiVersion": "example.com/v1", "spec": {"colour": "green"}}
        problems, _ = validate.validate_objects([v1], "1.31", None, "d")
        assert [str(p) for p in problems] == [
            "d:1:1: KKC302 Gadget/g: spec.colour: 'green' is not one of ['red', 'blue']"
        ]
        v0 = {**gadget, "apiVersion": "example.com/v0"}
        assert [report.line(w) for w in validate.validate_objects([v0], "1.31", None, "d")[1]] == [
            "warning: example.com/v0 Gadget objects not validated: kkc embeds no schema for "
            "them (pass --crd-dir DIR with their CRD, or set KKC_CRD_DIR)"
        ]
    finally:
        monkeypatch.undo()
        for fn in caches:
            fn.cache_clear()


def test_doctor_lists_the_embedded_schemas(kkc, tmp_path: Path) -> None:
    result = kkc(tmp_path, "doctor")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert "crd-dir              not set (KKC_CRD_DIR): the embedded CRD schemas only" in lines
    assert "crd-schemas          26 served CRD versions embedded in kkc" in lines
    assert (
        "  external-secrets.io/v1 ExternalSecret: external-secrets/external-secrets@cc5bfbc2234a"
        in lines
    )
    assert (
        "  monitoring.coreos.com/v1 ServiceMonitor: "
        "prometheus-operator/prometheus-operator@6adcebc5076c 0.93.0" in lines
    )
    info = json.loads(kkc(tmp_path, "doctor", "-o", "json").stdout)
    assert info["crd-dir-kinds"] == []
    assert info["crd-schemas"] == validate.embedded_kinds()
    assert {
        "group": "argoproj.io",
        "version": "v1alpha1",
        "kind": "ApplicationSet",
        "source": {
            "repository": "argoproj/argo-cd",
            "commit": "37ee0097cf851bc2dd7665fc081bbce61a7e836e",
            "version": None,
        },
    } in info["crd-schemas"]


def test_doctor_shows_what_a_crd_directory_adds_and_overrides(kkc, tmp_path: Path) -> None:
    crds = tmp_path / "crds"
    write(crds, "widget.yaml", WIDGET_CRD)
    write(crds, "es.yaml", STRICT_EXTERNAL_SECRET_CRD)
    result = kkc(tmp_path, "doctor", "--crd-dir", str(crds))
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    start = lines.index(
        f"crd-dir              {crds} (2 served CRD versions, 1 overriding embedded ones)"
    )
    assert lines[start + 1 : start + 3] == [
        "  example.com/v1 Widget: adds a kind",
        "  external-secrets.io/v1 ExternalSecret: overrides the embedded schema",
    ]
    assert (
        "  external-secrets.io/v1 ExternalSecret: external-secrets/external-secrets@cc5bfbc2234a"
        " (overridden by crd-dir)" in lines
    )
    info = json.loads(kkc(tmp_path, "doctor", "--crd-dir", str(crds), "-o", "json").stdout)
    assert info["crd-dir-kinds"] == [
        {"apiVersion": "example.com/v1", "kind": "Widget", "overrides": False},
        {"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret", "overrides": True},
    ]
    missing = kkc(tmp_path, "doctor", "--crd-dir", str(tmp_path / "nope"))
    assert missing.exit_code == 2
    assert "KKC171" in missing.stderr
