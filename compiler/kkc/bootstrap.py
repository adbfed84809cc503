"""`kkc bootstrap`: the GitOps objects to apply once, for one site or (an ApplicationSet)
for a fleet, validated against their CRD schemas."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import build, gitops, validate
from .errors import OutputInvalid, Problem, UsageError
from .generate import render_tree
from .loader import load_site
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


@dataclass
class BootstrapRun:
    """What `kkc bootstrap` prints: the stream, its objects, the notes and warnings for
    stderr; with --write, :meth:`write` then writes the site's deploy/SITE/."""

    text: bytes
    objects: list[dict[str, Any]]
    warnings: list[Problem]
    notes: list[str] = field(default_factory=list)
    root: Path | None = None
    site: Site | None = None
    crd_dir: str | None = None

    def write(self) -> str:
        """deploy/SITE/ written as `kkc build SITE` writes it: the line that says so."""
        assert self.root is not None and self.site is not None
        [result] = build.build_sites(self.root, [self.site], crd_dir=self.crd_dir, commit=False)
        state = "written" if result.files else "up to date"
        return f"{self.site.name}: deploy/{self.site.name}/bootstrap.yaml {state}"


def run(
    root: Path,
    names: list[str],
    *,
    all_sites: bool,
    applicationset: bool,
    name: str,
    write: bool,
    crd_dir: str | None,
) -> BootstrapRun:
    """`kkc bootstrap`: one site's objects, or with ``applicationset`` the ApplicationSet
    of the named (default: every) site."""
    if applicationset:
        if write:
            raise UsageError(
                "--write writes one site's deploy/SITE/bootstrap.yaml; redirect the "
                "ApplicationSet to a file instead"
            )
        chosen = build.load_sites(root, names, all_sites or not names)
        fleet = bootstrap_applicationset(chosen, crd_dir, name)
        notes = [
            f"note: {site.name} uses gitops.engine {site.get('gitops.engine')}: not in "
            f"the ApplicationSet (kkc bootstrap {site.name} prints its objects)"
            for site in fleet.excluded
        ]
        notes += [
            f"note: {site.name}: install first: {need}"
            for site in chosen
            if site not in fleet.excluded
            for need in gitops.prerequisites(site)
        ]
        return BootstrapRun(fleet.text, fleet.objects, fleet.warnings, notes)
    if all_sites or len(names) != 1:
        raise UsageError("name one site, or pass --applicationset for several")
    loaded = load_site(root, names[0])
    text, objects, warnings = bootstrap(loaded, crd_dir)
    notes = [f"note: install first: {need}" for need in gitops.prerequisites(loaded)]
    checks = [key for key, _lua in gitops.argo_health_checks(loaded)]
    if notes and checks and loaded.get("gitops.engine") == "argocd":
        notes.append(
            "note: Argo CD waits for the operators' resources with the health checks in "
            f"the header of this stream (argocd-cm data keys {', '.join(checks)})"
        )
    return BootstrapRun(text, objects, warnings, notes, root, loaded, crd_dir)
