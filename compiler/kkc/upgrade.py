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

import os
import re
import tempfile
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from . import build
from .errors import InputError, Problem
from .loader import load_site
from .model import Origin, Site

SITE_LAYER = "site"


@dataclass(frozen=True)
class Facts:
    series: tuple[str, ...]
    slurp: frozenset[str]
    supported: tuple[str, ...]
    rabbitmq: dict[str, str]
    rabbitmq_allowed: dict[str, tuple[str, ...]]


@cache
def facts() -> Facts:
    text = (resources.files("kkc") / "data" / "upgrades.yaml").read_text(encoding="utf-8")
    data = YAML(typ="safe").load(text)
    return Facts(
        series=tuple(data["series"]),
        slurp=frozenset(data["slurp"]),
        supported=tuple(data["supported"]),
        rabbitmq=dict(data["rabbitmq"]),
        rabbitmq_allowed={k: tuple(v) for k, v in data["rabbitmqAllowedUpgrades"].items()},
    )


def _next_hop(current: str, target: str) -> str | None:
    """The furthest supported release before ``target`` that one upgrade from ``current``
    reaches (the next release, or the next SLURP release from a SLURP release)."""
    f = facts()
    at = f.series.index(current)
    hops = [f.series[at + 1]] if at + 1 < len(f.series) else []
    if current in f.slurp:
        hops += [r for r in f.series[at + 1 :] if r in f.slurp][:1]
    ahead = [r for r in hops if r in f.supported and f.series.index(r) < f.series.index(target)]
    return max(ahead, key=f.series.index, default=None)


def path_problem(current: str, target: str) -> str | None:
    """Why ``current`` -> ``target`` is refused (one sentence), or None when it is allowed."""
    f = facts()
    supported = ", ".join(f.supported)
    if target not in f.supported:
        return f'OpenStack release "{target}" is not supported by kkc (supported: {supported})'
    if target == current:
        return f"the site is already on {current}"
    order = f.series.index
    if order(target) < order(current):
        return (
            f"{current} -> {target} is a downgrade: database migrations and RabbitMQ feature "
            "flags cannot be undone; restore the old release from a backup instead"
        )
    skipped = f.series[order(current) + 1 : order(target)]
    if not skipped:
        return None
    if current in f.slurp and target in f.slurp and not any(r in f.slurp for r in skipped):
        return None
    hop = _next_hop(current, target)
    slurp = [r for r in skipped if r in f.slurp]
    why = (
        f"skips {', '.join(skipped)}"
        + (
            f" (a SLURP release: a skip ends at the next SLURP release, {slurp[0]})"
            if slurp
            else ""
        )
        + ("" if current in f.slurp else f"; {current} is not a SLURP release")
    )
    first = f"upgrade to {hop} first" if hop else "kkc supports no release to go through"
    return f"{current} -> {target} {why}; {first}"


def rabbitmq_problem(current: str, target: str) -> str | None:
    """Why the RabbitMQ version jump of ``current`` -> ``target`` is refused, or None: one
    minor version up within a major version, or a jump kolla-ansible lists."""
    f = facts()
    old, new = f.rabbitmq[current], f.rabbitmq[target]
    if old == new:
        return None
    (old_major, old_minor), (new_major, new_minor) = (map(int, v.split(".")) for v in (old, new))
    if old_major == new_major and new_minor == old_minor + 1:
        return None
    if new in f.rabbitmq_allowed.get(old, ()):
        return None
    return (
        f"{current} -> {target} moves RabbitMQ {old} -> {new}, outside the allowed ladder "
        f"(one minor version at a time, or {_ladder(old)}); upgrade RabbitMQ to "
        f"{old_major}.{old_minor + 1} first"
    )


def _ladder(old: str) -> str:
    jumps = facts().rabbitmq_allowed.get(old)
    return f"from {old} to {', '.join(jumps)}" if jumps else f"no listed jump from {old}"


def release_origin(site: Site) -> Origin:
    return site.origins[("openstack", "release")]


def check(site: Site, target: str) -> None:
    """Raise InputError (exit 2) when the site cannot go to ``target``: one line at the
    file and key that set its release."""
    current = site.get("openstack.release")
    origin = release_origin(site)
    why = path_problem(current, target)
    code = "KKC190"
    if why is None:
        why, code = rabbitmq_problem(current, target), "KKC195"
    if why:
        raise InputError(Problem(origin.path, origin.line, origin.col, code, why))


def set_release(text: str, target: str, display: str = "site.yaml") -> str:
    """site.yaml's text with openstack.release set to ``target``, every other byte kept: a
    value already there is replaced where it stands; else a ``release`` line is added to a
    block ``openstack`` mapping (as its first key), or an ``openstack`` mapping at the end.
    The positions come from ruamel's round-trip loader."""
    doc: Any = YAML(typ="rt").load(text)
    lines = text.splitlines(keepends=True)
    value = f'"{target}"'
    openstack = doc.get("openstack") if isinstance(doc, dict) else None
    if isinstance(openstack, dict) and "release" in openstack:
        line, col = openstack.lc.value("release")
        old = lines[line]
        token = re.match(r"""("[^"]*"|'[^']*'|[^\s#]+)""", old[col:])
        assert token, old
        lines[line] = old[:col] + value + old[col + token.end() :]
        return "".join(lines)
    if isinstance(openstack, dict) and openstack and openstack.fa.flow_style() is False:
        line, col = openstack.lc.key(next(iter(openstack)))
        lines.insert(line, f"{' ' * col}release: {value}\n")
        return "".join(lines)
    if openstack is None:
        tail = "" if not text or text.endswith("\n") else "\n"
        return f"{text}{tail}openstack:\n  release: {value}\n"
    raise InputError(
        Problem(
            display,
            *(p + 1 for p in doc.lc.key("openstack")),
            "KKC190",
            "openstack: write it as a block mapping for kkc upgrade to set its release",
        )
    )


def _write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
    check(site, target)
    current = site.get("openstack.release")
    path = root / "sites" / name / "site.yaml"
    original = path.read_bytes()
    _write(path, set_release(original.decode("utf-8"), target, f"sites/{name}/site.yaml"))
    try:
        [result] = build.build_sites(root, [load_site(root, name)], crd_dir=crd_dir, commit=False)
    except BaseException:
        path.write_bytes(original)
        raise
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
