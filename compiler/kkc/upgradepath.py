"""The upgrade paths between OpenStack releases, from the release facts
(``kkc/data/upgrades.yaml``, each fact with its source): which release may follow which
(SLURP skips), and which RabbitMQ version jumps kolla-ansible allows. `kkc upgrade`
checks them before it edits a site; `kkc build` and `kkc check` check them against the
release of the committed output (:mod:`kkc.safety`)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

from ruamel.yaml import YAML


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
    why = ladder_problem(old, new)
    return None if why is None else f"{current} -> {target} {why}"


def _version(v: str) -> tuple[int, int]:
    major, minor = v.split(".")[:2]
    return int(major), int(minor)


def allowed_jump(old: str, new: str) -> bool:
    """Whether RabbitMQ may go from ``old`` to ``new`` (major.minor) in one image change,
    as kolla-ansible's version-check.yml allows it: the same version, one minor version up
    within a major, or a jump ``rabbitmqAllowedUpgrades`` lists."""
    (old_major, old_minor), (new_major, new_minor) = _version(old), _version(new)
    if (old_major, old_minor) == (new_major, new_minor):
        return True
    if old_major == new_major and new_minor == old_minor + 1:
        return True
    return new in facts().rabbitmq_allowed.get(old, ())


def ladder_problem(old: str, new: str) -> str | None:
    """Why RabbitMQ cannot go from ``old`` to ``new`` in one image change (a phrase that
    names the version to go through), or None when it can."""
    if _version(new) < _version(old):
        return (
            f"moves RabbitMQ {old} -> {new}, a downgrade: an older RabbitMQ refuses to start "
            f"on the feature flags the newer one enabled; keep RabbitMQ {old} until a release "
            "whose RabbitMQ is newer"
        )
    if allowed_jump(old, new):
        return None
    major, minor = _version(old)
    steps = [f"{major}.{minor + 1}", *facts().rabbitmq_allowed.get(old, ())]
    ahead = [v for v in steps if _version(v) < _version(new)]
    through = max(ahead, key=_version) if ahead else f"{major}.{minor + 1}"
    return (
        f"moves RabbitMQ {old} -> {new}, outside the allowed ladder (one minor version at "
        f"a time, or {_ladder(old)}); upgrade RabbitMQ to {through} first"
    )


def _ladder(old: str) -> str:
    jumps = facts().rabbitmq_allowed.get(old)
    return f"from {old} to {', '.join(jumps)}" if jumps else f"no listed jump from {old}"


# The official RabbitMQ image of RabbitMQ 4, which RabbitMQ's cluster operator runs:
# <registry>/rabbitmq:<4.minor[.patch]>[-variant] (Kolla's rabbitmq has release tags)
_RABBITMQ_IMAGE = re.compile(
    r"^(?:[^@]*/)?rabbitmq:(4\.\d+(?:\.\d+)?)(?:-[a-z0-9.-]+)?(?:@sha256:[0-9a-f]{64})?$"
)


def rabbitmq_image_version(image: str) -> str | None:
    """The RabbitMQ major.minor of an official RabbitMQ 4 image, or None if it is not one."""
    m = _RABBITMQ_IMAGE.match(image)
    return ".".join(m.group(1).split(".")[:2]) if m else None


PATH_REFUSED = "KKC190"
RABBITMQ_REFUSED = "KKC195"


def refusal(current: str, target: str, *, kolla_rabbitmq: bool = True) -> tuple[str, str] | None:
    """(code, why) when ``current`` -> ``target`` is refused: the path (KKC190), else the
    RabbitMQ ladder of the Kolla images (KKC195; ``kolla_rabbitmq=False``: the site runs no
    Kolla RabbitMQ, its operator-managed cluster's image is checked on its own); None when
    the upgrade is allowed."""
    why = path_problem(current, target)
    if why is not None:
        return PATH_REFUSED, why
    if not kolla_rabbitmq:
        return None
    why = rabbitmq_problem(current, target)
    return None if why is None else (RABBITMQ_REFUSED, why)
