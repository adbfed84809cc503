"""Overlays: reusable features in ``overlays/<name>/``, listed in a site's ``overlays``.

An overlay has up to three parts, all optional:

- ``defaults.yaml``: a layer beneath the site (loaded by :mod:`kkc.loader`);
- ``kustomization.yaml`` (``kind: Component``): applied to every stage of the site, so it
  holds patches and transformers only (a resource would be added once per stage);
- ``<stage>/kustomization.yaml`` (``kind: Component``): applied to that stage only; the
  place for resources, which then deploy in that stage's wave (Argo CD) or Kustomization
  (Flux).

Every stage of deploy/<site>/ lists the overlay components that apply to it, so each
stage builds on its own exactly as it builds inside the whole site.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError
from ruamel.yaml.scalarstring import LiteralScalarString

from .errors import WARNING, InputError, Problem, did_you_mean
from .model import STAGES, Layer, Site, locate
from .yamlio import load_mapping, read_text, to_plain

COMPONENT = "Component"
KUSTOMIZATION = "kustomization.yaml"


def components(site: Site, stage: str) -> list[str]:
    """The overlay component directories for ``stage``, relative to the repository root,
    in the order of the site's ``overlays`` list."""
    out = []
    for name in site.get("overlays") or []:
        ov = site.root / "overlays" / name
        if (ov / KUSTOMIZATION).is_file():
            out.append(f"overlays/{name}")
        if (ov / stage / KUSTOMIZATION).is_file():
            out.append(f"overlays/{name}/{stage}")
    return out


def _check_component(path: Path, display: str, *, every_stage: bool) -> list[Problem]:
    doc = load_mapping(path, display)
    problems = []

    def problem(key: str, message: str, *, is_key: bool = False) -> None:
        line, col = locate(doc, (key,), is_key) if key in doc else (1, 1)
        problems.append(Problem(display, line, col, "KKC127", message))

    if doc.get("kind") != COMPONENT:
        problem(
            "kind",
            "an overlay's kustomization must be a Component "
            "(apiVersion: kustomize.config.k8s.io/v1alpha1, kind: Component)",
        )
    if every_stage and doc.get("resources"):
        problem(
            "resources",
            "this component applies to every stage, so its resources would be added "
            "once per stage; move them to the stage they belong to "
            f"(overlays/<name>/<stage>/, stages: {', '.join(STAGES)})",
            is_key=True,
        )
    return problems


def check_dirs(root: Path, names: list[str]) -> list[Problem]:
    """The component parts of the named (existing) overlays."""
    problems: list[Problem] = []
    stages = tuple(STAGES)
    for name in names:
        ov = root / "overlays" / name
        if not ov.is_dir():
            continue  # KKC124, reported with the site's overlays list
        if (ov / KUSTOMIZATION).is_file():
            problems += _check_component(
                ov / KUSTOMIZATION, f"overlays/{name}/{KUSTOMIZATION}", every_stage=True
            )
        for sub in sorted(p for p in ov.iterdir() if p.is_dir()):
            display = f"overlays/{name}/{sub.name}/{KUSTOMIZATION}"
            if sub.name not in stages:
                if not (sub / KUSTOMIZATION).is_file():
                    continue  # a directory of files the components use
                problems.append(
                    Problem(
                        display,
                        1,
                        1,
                        "KKC127",
                        f'"{sub.name}" is not a stage (stages: {", ".join(stages)})'
                        + did_you_mean(sub.name, stages),
                    )
                )
            elif (sub / KUSTOMIZATION).is_file():
                problems += _check_component(sub / KUSTOMIZATION, display, every_stage=False)
    return problems


def _leaves(node: Any, path: tuple[str, ...] = ()) -> dict[tuple[str, ...], Any]:
    if isinstance(node, dict) and node:
        out: dict[tuple[str, ...], Any] = {}
        for key, value in node.items():
            out.update(_leaves(value, (*path, str(key))))
        return out
    return {path: node}


def conflicts(layers: list[Layer], site: Site) -> list[Problem]:
    """Two overlays whose defaults set one value differently, where the site does not
    decide it (KKC128, a warning): the later listed overlay wins, so the result depends
    on the order of the overlays list, which is easy to change by accident."""
    seen: dict[tuple[str, ...], tuple[Layer, Any]] = {}
    problems = []
    for layer in (lay for lay in layers if lay.name.startswith("overlay ")):
        for path, value in _leaves(to_plain(layer.doc)).items():
            if path == ("overlays",):
                continue
            first = seen.setdefault(path, (layer, value))
            origin = site.origins.get(path)
            if first[1] == value or (origin and origin.layer == "site"):
                continue
            line, col = locate(layer.doc, path)
            other, other_value = first
            oline, ocol = locate(other.doc, path)
            problems.append(
                Problem(
                    layer.display,
                    line,
                    col,
                    "KKC128",
                    f"{'.'.join(path)}: {layer.name} sets {value!r} but {other.name} "
                    f"({other.display}:{oline}:{ocol}) sets {other_value!r}; the later listed "
                    "overlay wins; set the value in the site to decide",
                    WARNING,
                )
            )
    return problems


# the keys of a patch target that pick objects (group and version only narrow the kind)
_PICK = ("kind", "name", "namespace", "labelSelector", "annotationSelector")


def _object(target: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    return tuple((k, str(target[k])) for k in _PICK if target.get(k) is not None)


def _fields(target: dict[str, Any] | None, body: Any) -> list[tuple[Any, tuple, Any, tuple]]:
    """(object, field, value, where in ``body``) for each field a patch sets: the leaves of a
    strategic-merge patch (maps merge, and so do lists of items with a ``name``, by name;
    other lists are one value), and the add/replace operations of a JSON 6902 patch (same
    object and path). ``object`` is the patch's target, else the kind, name and namespace
    of the strategic-merge patch."""
    out: list[tuple[Any, tuple, Any, tuple]] = []
    if isinstance(body, list):  # JSON 6902
        if not isinstance(target, dict):
            return out
        for i, op in enumerate(body):
            if not isinstance(op, dict) or op.get("op") not in ("add", "replace"):
                continue
            path = str(op.get("path", ""))
            if not path.startswith("/") or path.endswith("/-") or "value" not in op:
                continue  # appending to a list changes no field another patch sets
            field = tuple(t.replace("~1", "/").replace("~0", "~") for t in path.split("/")[1:])
            out.append((_object(target), field, to_plain(op["value"]), (i, "value")))
        return out
    if not isinstance(body, dict):
        return out
    meta = body.get("metadata") if isinstance(body.get("metadata"), dict) else {}
    if not isinstance(target, dict):
        target = {"kind": body.get("kind"), "name": meta.get("name")}
        target["namespace"] = meta.get("namespace")
    obj = _object(target)

    def walk(node: Any, field: tuple, where: tuple) -> None:
        if isinstance(node, dict) and node:
            for key, value in node.items():
                walk(value, (*field, str(key)), (*where, key))
        elif (
            isinstance(node, list)
            and node
            and all(isinstance(v, dict) and isinstance(v.get("name"), str) for v in node)
        ):
            for i, item in enumerate(node):
                rest = {k: v for k, v in item.items() if k != "name"}
                walk(rest, (*field, f"[name={item['name']}]"), (*where, i))
        else:
            out.append((obj, field, to_plain(node), where))

    for key, value in body.items():
        if key in ("apiVersion", "kind"):
            continue
        if key == "metadata" and isinstance(value, dict):
            value = {k: v for k, v in value.items() if k not in ("name", "namespace")}
        walk(value, (str(key),), (key,))
    return out


def _docs(text: str) -> list[Any]:
    try:
        return [d for d in YAML(typ="rt").load_all(text) if d is not None]
    except YAMLError:
        return []  # kustomize reports it


def _component_patches(root: Path, name: str, stages: tuple[str, ...]) -> list[tuple]:
    """(stages, target, body, file, locate) for each patch of an overlay's components;
    ``locate(where)`` is the file's (line, col) of a place in ``body``."""
    out = []
    parts = [("", set(stages))] + [(f"{s}/", {s}) for s in stages]
    for sub, applies in parts:
        rel = f"overlays/{name}/{sub}{KUSTOMIZATION}"
        if not (root / rel).is_file():
            continue
        try:
            kust = load_mapping(root / rel, rel)
        except InputError:
            continue  # reported as KKC127 or by kustomize
        entries = kust.get("patches")
        for n, entry in enumerate(entries if isinstance(entries, list) else []):
            if not isinstance(entry, dict):
                continue
            target = to_plain(entry.get("target"))
            if isinstance(entry.get("path"), str):
                file = f"overlays/{name}/{sub}{entry['path']}"
                try:
                    docs = _docs(read_text(root / file, file))
                except InputError:
                    continue
                for body in docs:
                    out.append((applies, target, body, file, lambda w, b=body: locate(b, w)))
            elif isinstance(entry.get("patch"), str):
                line, col = locate(kust, ("patches", n, "patch"))
                text = entry["patch"]
                lines = read_text(root / rel, rel).splitlines()
                # a literal block (patch: |) starts on the next line, indented
                literal = isinstance(text, LiteralScalarString) and line < len(lines)
                indent = len(lines[line]) - len(lines[line].lstrip()) if literal else 0

                def inline(w: tuple, b: Any, at=(line, col), literal=literal, indent=indent):
                    if not literal:
                        return at  # the patch string itself
                    inner_line, inner_col = locate(b, w)
                    return at[0] + inner_line, indent + inner_col

                for body in _docs(str(text)):
                    out.append((applies, target, body, rel, lambda w, b=body, f=inline: f(w, b)))
    return out


def component_conflicts(site: Site) -> list[Problem]:
    """Two overlays whose components patch one field of one object to different values
    in a stage they both apply to (KKC128, a warning, at the later overlay's patch): the
    later listed overlay wins. A field that a site patch sets is decided by the site."""
    stages = tuple(STAGES)
    decided = {(o, f) for p in site.patches for o, f, _v, _w in _fields(p.target, p.body)}
    seen: dict[tuple, tuple] = {}
    problems = []
    for name in site.get("overlays") or []:
        for applies, target, body, file, where in _component_patches(site.root, name, stages):
            for obj, field, value, at in _fields(target, body):
                first = seen.setdefault((obj, field), (name, value, file, where(at), applies))
                other, other_value, other_file, (oline, ocol), other_applies = first
                if other == name or other_value == value or not applies & other_applies:
                    continue
                if (obj, field) in decided:
                    continue
                line, col = where(at)
                problems.append(
                    Problem(
                        file,
                        line,
                        col,
                        "KKC128",
                        f"{_thing(obj)} {_dotted(field)}: overlay {name} sets {value!r} but "
                        f"overlay {other} ({other_file}:{oline}:{ocol}) sets {other_value!r}; "
                        "the later listed overlay wins; set it in a site patch "
                        f"(sites/{site.name}/patches/) to decide",
                        WARNING,
                    )
                )
    return problems


def _thing(obj: tuple[tuple[str, str], ...]) -> str:
    what = dict(obj)
    name = f"{what.get('kind', '*')}/{what['name']}" if "name" in what else what.get("kind", "*")
    extra = [f"{k} {v}" for k, v in obj if k not in ("kind", "name")]
    return f"{name} ({', '.join(extra)})" if extra else name


def _dotted(field: tuple[str, ...]) -> str:
    return "".join(p if p.startswith("[") else f".{p}" for p in field).lstrip(".")
