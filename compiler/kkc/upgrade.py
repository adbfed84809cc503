"""`kkc upgrade SITE --to RELEASE`: a checked change of a site's OpenStack release.

The release facts are data (``kkc/data/upgrades.yaml``, each fact with its source): the
series in order, the SLURP releases, the releases kkc supports, the RabbitMQ version of
each release's Kolla image and the RabbitMQ jumps kolla-ansible allows. The path checks
refuse, with one located line (KKC190), an unsupported target, the same release, a
downgrade, and a skip that is not SLURP -> SLURP, naming the release to go through; a
RabbitMQ jump outside the allowed ladder is KKC195.

An accepted upgrade sets ``openstack.release`` in the site's own site.yaml (comments and
layout kept: ruamel round-trip), also when the release came from sites/defaults.yaml,
then builds the site as `kkc build SITE` does. The state of an upgrade is the site
definition and the committed output: there is no other record. Should the build fail,
site.yaml gets its old bytes back.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import build, catalog, siteedit
from .errors import InputError, Problem
from .loader import load_site
from .model import GLOBAL, Origin, Setting, Site, parse_target, rabbitmq_operator
from .upgradepath import PATH_REFUSED, refusal

SITE_LAYER = "site"


def release_origin(site: Site) -> Origin:
    return site.origins[("openstack", "release")]


def check(site: Site, target: str) -> list[Problem]:
    """Raise InputError (exit 2) when the site cannot go to ``target``: the path (one line
    at the file and key that set its release), then the config overrides the target's
    option catalog removed (KKC191). Returns the warnings: overrides the target renamed
    (KKC192) or deprecated for removal (KKC193)."""
    current = site.get("openstack.release")
    origin = release_origin(site)
    refused = refusal(current, target, kolla_rabbitmq=not rabbitmq_operator(site))
    if refused:
        raise InputError(Problem(origin.path, origin.line, origin.col, *refused))
    found = override_findings(site, current, target)
    errors = [p for p in found if p.code == "KKC191"]
    warnings = [p.as_warning() for p in found if p.code != "KKC191"]
    if errors:
        exc = InputError(errors)
        exc.warnings = warnings
        raise exc
    return warnings


def _conf_files(site: Site, target: str) -> list[str]:
    """The option catalogs an override target's settings are read against."""
    service, _component, file = parse_target(target)
    if service == GLOBAL:
        return [conf for svc, conf in catalog.MAIN_CONF.items() if site.enabled(svc)]
    if file:
        return [file] if file in catalog.CONF_FILES else []
    return [catalog.MAIN_CONF[service]] if service in catalog.MAIN_CONF else []


def _finding(setting: Setting, conf: str, current: str, target: str) -> tuple[str, str] | None:
    """(code, message) for one override setting in one config file, or None: only what
    changes between the two releases (an option the current release does not know is the
    build's business, KKC130)."""
    old = catalog.load(current, conf).lookup(setting.section, setting.option)
    if old is None:
        return None
    new_cat = catalog.load(target, conf)
    new = new_cat.lookup(setting.section, setting.option)
    what = f"[{setting.section}] {setting.option}"
    if new is None:
        moved = [g for g in new_cat.sections() if setting.option in new_cat.options(g)]
        if old.replacement:
            hint = f"; use [{old.replacement[0]}] {old.replacement[1]}"
        elif moved:
            hint = f"; [{moved[0]}] {setting.option} exists"
        else:
            hint = ""
        return "KKC191", f"{what}: removed in {target} ({conf}){hint}"
    if new.replacement and not old.replacement:
        group, name = new.replacement
        return "KKC192", f"{what}: renamed in {target} ({conf}): use [{group}] {name}"
    if new.deprecated and not old.deprecated:
        return "KKC193", f"{what}: deprecated for removal in {target} ({conf})"
    return None


def override_findings(site: Site, current: str, target: str) -> list[Problem]:
    """The site's config overrides (YAML and config/ files) checked against the target
    release's option catalogs, at the file, line and column of each setting. An override
    of every service (``global``) is removed only when no file of the target has it."""
    found: dict[Problem, None] = {}
    for src in site.overrides:
        confs = _conf_files(site, src.target)
        for setting in src.settings:
            results = [_finding(setting, conf, current, target) for conf in confs]
            known = [
                r for r, conf in zip(results, confs, strict=True) if _knows(conf, current, setting)
            ]
            if not known or any(r is None for r in known):
                continue  # unknown to the current release, or unchanged somewhere
            code, message = next(r for r in known if r)
            o = setting.origin
            found[Problem(o.path, o.line, o.col, code, message)] = None
    return sorted(found, key=lambda p: (p.path, p.line, p.col, p.message))


def _knows(conf: str, release: str, setting: Setting) -> bool:
    return catalog.load(release, conf).lookup(setting.section, setting.option) is not None


def set_release(text: str, target: str, display: str = "site.yaml") -> str:
    """site.yaml's text with openstack.release set to ``target``, every other byte kept: a
    value already there is replaced where it stands; else a ``release`` line is added to a
    block ``openstack`` mapping (as its first key), or an ``openstack`` mapping at the end."""
    return siteedit.set_value(
        text, ("openstack", "release"), f'"{target}"', display, PATH_REFUSED, first=True
    )


@dataclass
class Upgraded:
    site: str
    current: str
    target: str
    file: str  # the site.yaml that now sets the release
    result: build.BuildResult


def upgrade(root: Path, name: str, target: str, crd_dir: str | None) -> Upgraded:
    """Check the path, set openstack.release in sites/<name>/site.yaml and build the site.
    On refusal nothing is written; when the build fails, site.yaml is restored."""
    site = load_site(root, name)
    warnings = check(site, target)
    current = site.get("openstack.release")
    path = root / "sites" / name / "site.yaml"
    original = path.read_bytes()
    siteedit.write_atomic(
        path, set_release(original.decode("utf-8"), target, f"sites/{name}/site.yaml")
    )
    try:
        [result] = build.build_sites(root, [load_site(root, name)], crd_dir=crd_dir, commit=False)
    except BaseException:
        path.write_bytes(original)
        raise
    result.warnings = warnings + result.warnings
    return Upgraded(name, current, target, f"sites/{name}/site.yaml", result)


def report(up: Upgraded) -> dict[str, Any]:
    """The ``-o json`` form of an upgrade."""
    r = up.result
    return {
        "site": up.site,
        "from": up.current,
        "to": up.target,
        "file": up.file,
        "files": vars(r.files),
        "objects": vars(r.objects),
    }


def summary(up: Upgraded) -> list[str]:
    """What the upgrade did and what comes next, for the terminal."""
    f, o = up.result.files, up.result.objects
    return [
        f"{up.site}: openstack.release {up.current} -> {up.target} in {up.file}",
        f"{up.site}: wrote deploy/{up.site}/ (files: {len(f.added)} added, {len(f.changed)} "
        f"changed, {len(f.removed)} removed; objects: {len(o.added)} added, "
        f"{len(o.changed)} changed, {len(o.removed)} removed)",
        f"next: review `git diff`, commit {up.file} and deploy/{up.site}/ together "
        f"(or `kkc build {up.site} --commit` after committing the site), and let the "
        "controller roll the stages out in order",
    ]
