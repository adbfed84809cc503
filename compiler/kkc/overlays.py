"""Overlays: reusable features in ``overlays/<name>/``, listed in a site's ``overlays``.

An overlay has up to three parts, all optional:

- ``defaults.yaml``: a layer beneath the site (loaded by :mod:`kkc.site`);
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
from typing import TYPE_CHECKING, Any

from .errors import Problem, did_you_mean
from .yamlio import load_mapping, to_plain

if TYPE_CHECKING:
    from .site import Layer, Site

COMPONENT = "Component"
KUSTOMIZATION = "kustomization.yaml"


def _stages() -> tuple[str, ...]:
    from .services import STAGES

    return tuple(STAGES)


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
    from .site import locate

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
            f"(overlays/<name>/<stage>/, stages: {', '.join(_stages())})",
            is_key=True,
        )
    return problems


def check_dirs(root: Path, names: list[str]) -> list[Problem]:
    """The component parts of the named (existing) overlays."""
    problems: list[Problem] = []
    stages = _stages()
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
    from .site import locate

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
                )
            )
    return problems
