"""Validation of rendered objects: Kubernetes schemas (kubernetes-validate's bundled
schemas, strict), CRD schemas (embedded in kkc, see docs/crd-schemas.md, and from a
directory, whose CRDs win), and kkc's own lint rules.

Schemas are loaded once per process and per (version, kind), so a fleet build pays for
each schema once."""

from __future__ import annotations

import functools
import gzip
import hashlib
import json
import os
import re
from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
from kubernetes_validate import utils as kv
from referencing import Registry, Resource

from . import cache
from .errors import Problem, command_line_error, warning
from .yamlio import load_stream

CRD_DIR_ENV = "KKC_CRD_DIR"


@functools.cache
def _k8s_schema_dir(version: str) -> str:
    usable = [v for v in kv.all_versions() if kv.major_minor(v) <= version]
    return f"kubernetes-json-schema/v{usable[-1]}-local-strict"


@functools.cache
def _k8s_definitions(version: str) -> Registry:
    defs = kv.schema_contents(f"{_k8s_schema_dir(version)}/_definitions.json", version)
    return Resource.from_contents(defs) @ Registry()


@functools.cache
def _k8s_validator(version: str, api_version: str, kind: str) -> Any | None:
    api = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    try:
        schema = kv.schema_contents(
            f"{_k8s_schema_dir(version)}/{kind.lower()}-{api}.json", version
        )
    except FileNotFoundError:
        return None
    registry = Resource.from_contents(schema) @ _k8s_definitions(version)
    return jsonschema.Draft202012Validator(schema, registry=registry)


def _strict(schema: Any) -> Any:
    """Refuse unknown fields, as the API server's structural pruning would drop them."""
    if isinstance(schema, dict):
        out = {k: _strict(v) for k, v in schema.items()}
        if (
            "properties" in out
            and "additionalProperties" not in out
            and not out.get("x-kubernetes-preserve-unknown-fields")
        ):
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [_strict(v) for v in schema]
    return schema


def _crd_schemas(path: Path) -> list[list[Any]]:
    """[[apiVersion, kind, schema], ...] of one CRD file, cached as JSON under the file's
    sha256 (large CRDs took seconds to parse with a pure-Python parser; libyaml's is faster,
    and the cache still saves the parse)."""
    data = path.read_bytes()
    cached = cache.directory() / "crd" / f"{hashlib.sha256(data).hexdigest()}.json"
    try:
        return json.loads(cached.read_bytes())
    except (OSError, ValueError):
        pass
    out = []
    for doc in load_stream(data.decode("utf-8")):
        if not isinstance(doc, dict) or doc.get("kind") != "CustomResourceDefinition":
            continue
        spec = doc["spec"]
        for ver in spec.get("versions", []):
            schema = (ver.get("schema") or {}).get("openAPIV3Schema")
            if ver.get("served") and schema:
                out.append([f"{spec['group']}/{ver['name']}", spec["names"]["kind"], schema])
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(out), encoding="utf-8")
        tmp.replace(cached)
    except OSError:
        pass  # a read-only cache only costs time
    return out


def _data_dir():  # -> Traversable
    return resources.files("kkc") / "data" / "crds"


@functools.cache
def embedded_index() -> dict[str, Any]:
    """The embedded CRD schemas' index (written by tools/gen-crd-schemas): ``controllers``
    (id -> repository, commit, release version, data file) and ``kinds`` (group, version,
    kind, controller), sorted."""
    return json.loads((_data_dir() / "index.json").read_bytes())


@functools.cache
def _embedded_controller(controller: str) -> dict[tuple[str, str], Any]:
    """(apiVersion, kind) -> schema, of every served version of one controller's CRDs."""
    info = embedded_index()["controllers"][controller]
    data = json.loads(gzip.decompress((_data_dir() / info["file"]).read_bytes()))
    return {
        (f"{crd['group']}/{ver['name']}", crd["kind"]): ver["schema"]
        for crd in data["crds"]
        for ver in crd["versions"]
    }


@functools.cache
def _embedded_kinds() -> dict[tuple[str, str], str]:
    """(apiVersion, kind) -> controller id, of every embedded schema."""
    return {
        (f"{k['group']}/{k['version']}", k["kind"]): k["controller"]
        for k in embedded_index()["kinds"]
    }


def embedded_kinds() -> list[dict[str, Any]]:
    """The embedded schemas for `kkc doctor`: group, version, kind and the controller's
    source (repository, commit, release version when known), sorted."""
    controllers = embedded_index()["controllers"]
    return [
        {
            "group": k["group"],
            "version": k["version"],
            "kind": k["kind"],
            "source": {
                key: controllers[k["controller"]][key]
                for key in ("repository", "commit", "version")
            },
        }
        for k in embedded_index()["kinds"]
    ]


@functools.cache
def _crd_dir_schemas(crd_dir: str) -> dict[tuple[str, str], Any]:
    """(apiVersion, kind) -> schema, for every served version of every CRD in crd_dir."""
    out: dict[tuple[str, str], Any] = {}
    for path in sorted(Path(crd_dir).glob("*.y*ml")):
        for api_version, kind, schema in _crd_schemas(path):
            out[(api_version, kind)] = schema
    return out


@functools.cache
def _embedded_validator(api_version: str, kind: str) -> Any | None:
    controller = _embedded_kinds().get((api_version, kind))
    if controller is None:
        return None
    schema = _embedded_controller(controller)[(api_version, kind)]
    return jsonschema.Draft4Validator(_strict(schema))


@functools.cache
def _dir_validator(crd_dir: str, api_version: str, kind: str) -> Any | None:
    schema = _crd_dir_schemas(crd_dir).get((api_version, kind))
    return None if schema is None else jsonschema.Draft4Validator(_strict(schema))


def crd_validator(api_version: str, kind: str, crd_dir: str | None = None) -> Any | None:
    """The validator of a custom resource kind: from ``crd_dir`` when it has that
    (apiVersion, kind) -- a cluster's own CRDs win --, else the embedded schema, else
    None. Each validator is built once per process."""
    if crd_dir:
        found = _dir_validator(crd_dir, api_version, kind)
        if found is not None:
            return found
    return _embedded_validator(api_version, kind)


def crd_dir_kinds(crd_dir: str) -> list[tuple[str, str]]:
    """(apiVersion, kind) of every served CRD version in ``crd_dir``, sorted."""
    return sorted(_crd_dir_schemas(crd_dir))


def check_crd_dir(crd_dir: str | None) -> str:
    """``crd_dir`` when it is a directory with CRDs, ``""`` (embedded schemas only) when
    none is given; one KKC171 problem (exit 2) otherwise, so that a typo is not reported
    as "no schema" for every custom resource it was meant to add."""
    if not crd_dir:
        return ""
    where = f"CRD directory {crd_dir} (--crd-dir or {CRD_DIR_ENV})"
    path = Path(crd_dir)
    if not path.is_dir():
        raise command_line_error("KKC171", f"{where} does not exist or is not a directory")
    if not _crd_dir_schemas(crd_dir):
        raise command_line_error(
            "KKC171", f"{where} has no CustomResourceDefinition (in *.yaml or *.yml files)"
        )
    return crd_dir


def default_crd_dir() -> str | None:
    return os.environ.get(CRD_DIR_ENV) or None


# The warning for custom resources no schema covers; `kkc check` turns them into KKC172.
NOT_VALIDATED = re.compile(r"^(\S+) (\S+) objects not validated: ")


def not_validated(warnings: Iterable[Problem]) -> list[str]:
    """The "apiVersion kind" of each custom resource kind the warnings say went unvalidated."""
    return [
        f"{m[1]} {m[2]}"
        for w in warnings
        if w.path is None and (m := NOT_VALIDATED.match(w.message))
    ]


def _describe(obj: dict[str, Any]) -> str:
    return f"{obj.get('kind', '?')}/{(obj.get('metadata') or {}).get('name', '?')}"


def _error_text(obj: dict[str, Any], err: Any) -> str:
    where = ".".join(str(p) for p in err.absolute_path) or "(object)"
    if obj.get("kind") == "Secret":  # never echo what may be a secret value
        return f"{where}: fails `{err.validator}`"
    msg = err.message if len(err.message) <= 300 else err.message[:297] + "..."
    return f"{where}: {msg}"


def pod_spec(obj: dict[str, Any]) -> dict[str, Any] | None:
    """The pod spec of a Pod, a workload's template or a CronJob's job template."""
    kind, spec = obj.get("kind"), obj.get("spec") or {}
    if kind == "Pod":
        return spec
    if kind == "CronJob":
        spec = (spec.get("jobTemplate") or {}).get("spec") or {}
    return (spec.get("template") or {}).get("spec")


def pod_images(obj: dict[str, Any]) -> Iterable[str]:
    pod = pod_spec(obj) or {}
    for c in [*(pod.get("initContainers") or []), *(pod.get("containers") or [])]:
        yield c.get("image", "")


def validate_objects(
    objects: list[dict[str, Any]], k8s_version: str, crd_dir: str | None, display: str
) -> tuple[list[Problem], list[Problem]]:
    """(problems, warnings). Custom resources are validated against the CRD schemas of
    ``crd_dir`` (when given) and the embedded ones. A custom resource kind neither covers
    is named in a warning without a CRD directory, and is an error (KKC303) with one."""
    problems: list[Problem] = []
    warnings: list[Problem] = []

    def bad(code: str, msg: str) -> None:
        problems.append(Problem(display, 1, 1, code, msg))

    for obj in objects:
        if (
            not isinstance(obj, dict)
            or not obj.get("kind")
            or not obj.get("apiVersion")
            or not (obj.get("metadata") or {}).get("name")
        ):
            bad("KKC304", f"object without kind, apiVersion or metadata.name: {str(obj)[:80]}")
            continue
        what = _describe(obj)
        validator = _k8s_validator(k8s_version, obj["apiVersion"], obj["kind"])
        code = "KKC301"
        if validator is None:
            validator = crd_validator(obj["apiVersion"], obj["kind"], crd_dir)
            code = "KKC302"
        if validator is None and not crd_dir and "." in obj["apiVersion"].split("/")[0]:
            unchecked = warning(
                f"{obj['apiVersion']} {obj['kind']} objects not validated: kkc "
                f"embeds no schema for them (pass --crd-dir DIR with their CRD, or set "
                f"{CRD_DIR_ENV})"
            )
            if unchecked not in warnings:
                warnings.append(unchecked)
            continue
        if validator is None:
            bad(
                "KKC303",
                f"{what}: no schema for {obj['apiVersion']} {obj['kind']} "
                f"(Kubernetes {k8s_version}, CRDs embedded in kkc"
                f"{', CRDs in ' + crd_dir if crd_dir else ''})",
            )
            continue
        for err in sorted(
            validator.iter_errors(obj), key=lambda e: list(map(str, e.absolute_path))
        ):
            bad(code, f"{what}: {_error_text(obj, err)}")
        if obj["kind"] == "Secret" and (obj.get("data") or obj.get("stringData")):
            bad(
                "KKC305",
                f"{what}: Secret with literal data in the output; secrets come from "
                "ExternalSecrets or exist in the cluster",
            )
        for image in pod_images(obj):
            last = image.rsplit("/", 1)[-1]
            if "@" not in last and ":" not in last:
                bad("KKC306", f"{what}: image {image!r} has no tag or digest")
    return problems, warnings
