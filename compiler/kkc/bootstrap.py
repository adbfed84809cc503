"""`kkc bootstrap`: the GitOps objects to apply once, for one site or (an ApplicationSet)
for a fleet, validated against their CRD schemas."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import gitops, validate
from .errors import OutputInvalid, Problem, UsageError
from .generate import render_tree
from .model import DNS_LABEL_RE, Site
from .pipeline import check_bootstrap


def bootstrap(site: Site, crd_dir: str | None) -> tuple[bytes, list[dict[str, Any]], list[Problem]]:
    """`kkc bootstrap`: (the YAML stream, its objects, warnings); invalid objects raise."""
    tree = render_tree(site)
    objects, problems, warnings = check_bootstrap(site, tree, crd_dir)
    if problems:
        raise OutputInvalid(problems)
    return tree[gitops.BOOTSTRAP], objects, gitops.ignored_settings(site) + warnings


@dataclass
class Fleet:
    """`kkc bootstrap --applicationset`: the stream, its objects, warnings, and the sites
    left out because another engine reconciles them."""

    text: bytes
    objects: list[dict[str, Any]]
    warnings: list[Problem]
    excluded: list[Site]


def bootstrap_applicationset(sites: list[Site], crd_dir: str | None, name: str) -> Fleet:
    """One ApplicationSet over the Argo CD ``sites`` (with their AppProjects), validated
    against the CRD schemas; invalid objects raise."""
    if not DNS_LABEL_RE.match(name):
        raise UsageError(
            f'--name "{name}" is not a DNS-1123 label (lowercase letters, digits and "-", '
            "at most 63 characters)"
        )
    argo = [s for s in sites if s.get("gitops.engine") == "argocd"]
    excluded = [s for s in sites if s not in argo]
    if not argo:
        raise UsageError(
            "no Argo CD site to put in an ApplicationSet (gitops.engine is flux for "
            f"{', '.join(s.name for s in excluded)}); use kkc bootstrap SITE"
        )
    objects = gitops.applicationset(argo, name)
    problems, warnings = validate.validate_objects(
        objects, argo[0].get("kubernetes.version"), crd_dir, "<kkc bootstrap --applicationset>"
    )
    if problems:
        raise OutputInvalid(problems)
    ignored = [w for s in argo for w in gitops.ignored_settings(s)]
    warnings = list(dict.fromkeys(ignored)) + warnings
    return Fleet(gitops.applicationset_yaml(argo, objects), objects, warnings, excluded)
