"""OpenStack config overrides with kolla-ansible's semantics, checked against the option
catalog of the site's release.

Override files are named as under ``sites/<site>/config/``: ``global`` (every service),
``<service>`` (every container of the service, its bring-up Jobs included) and
``<service>/<component>`` (one component: a container named ``<component>-kolla``, e.g.
``nova/nova-compute``). Each targets the service's main config file (:data:`MAIN_CONF`).

Sources, lowest first; a later one wins per (section, option):

1. what kkc renders (the service modules);
2. the inline ``config:`` of the layers (already layered like every other key):
   ``config.global``, ``config.<service>``, ``config.<service>/<component>``;
3. the files ``sites/<site>/config/global.conf``, ``<service>.conf`` and
   ``<service>/<component>.conf``.

Merging follows kolla-ansible's ``merge_configs``: sections and options keep their order,
new ones are added at the end; all the values of a key repeated in one source are kept
(multi-valued options); a later source replaces every value of a key. A YAML list is one
line per value for a multi-valued option, else one comma-separated value (list options).

Every override is checked with :func:`kkc.catalog.check_options` in the context of each
file it lands in (so ``enabled_backends`` sections, ``auth_section`` and the like resolve
as in the rendered file); findings point at the override's file, line and column.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from . import catalog
from .errors import InputError, Problem
from .kolla import Ini, IniFile, KollaConfig, ini_entries, ini_value
from .services import ServiceOutput, enabled_services
from .site import Origin, Site
from .yamlio import read_text

GLOBAL = "global"
# The file of each service that its overrides go into (kolla-ansible's <service>.conf).
MAIN_CONF = {
    "keystone": "keystone.conf",
    "glance": "glance-api.conf",
    "placement": "placement.conf",
    "cinder": "cinder.conf",
    "neutron": "neutron.conf",
    "nova": "nova.conf",
    "heat": "heat.conf",
}
FILE_LAYER = "config file"
LAYOUT = "config/global.conf, config/<service>.conf or config/<service>/<component>.conf"


@dataclass(frozen=True)
class Setting:
    """One override line (or YAML key): ``value`` is a tuple for a YAML list."""

    section: str
    option: str
    value: str | tuple[str, ...]
    origin: Origin


@dataclass(frozen=True)
class Source:
    """The overrides of one target from one place (a YAML ``config.<target>`` or a file)."""

    target: str  # "global", "<service>" or "<service>/<component>"
    settings: tuple[Setting, ...]
    origin: Origin  # the YAML key or the file
    from_file: bool

    @property
    def rank(self) -> tuple[int, int]:
        """Precedence: YAML before files, then global < service < component."""
        level = 0 if self.target == GLOBAL else 2 if "/" in self.target else 1
        return (int(self.from_file), level)

    def meaning(self) -> list[Any]:
        return [self.target, [[s.section, s.option, s.value] for s in self.settings]]


def components(out: ServiceOutput) -> list[str]:
    """The component names of a service: its long-running containers with the main file."""
    conf = MAIN_CONF[out.name]
    return sorted(
        kc.name.removesuffix("-kolla")
        for kcs in out.configs.values()
        for kc in kcs
        if conf in kc.inis
    )


def _containers(out: ServiceOutput) -> Iterator[tuple[KollaConfig, str | None]]:
    """Every container config of the service, with its component (None: a bring-up Job)."""
    for kcs in out.configs.values():
        for kc in kcs:
            yield kc, kc.name.removesuffix("-kolla")
    if out.db_sync:
        for step in out.db_sync.steps:
            yield step.config, None


def _yaml_sources(site: Site) -> list[Source]:
    sources = []
    for target, sections in (site.get("config") or {}).items():
        settings = []
        for section, options in sections.items():
            for option, value in options.items():
                text = (
                    tuple(ini_value(v) for v in value)
                    if isinstance(value, list)
                    else ini_value(value)
                )
                origin = site.origins[("config", target, section, option)]
                settings.append(Setting(section, option, text, origin))
        sources.append(Source(target, tuple(settings), site.origins[("config", target)], False))
    return sources


def _file_sources(site: Site) -> tuple[list[Source], list[Problem]]:
    top = site.root / "sites" / site.name / "config"
    shown = f"sites/{site.name}/config"
    if not top.is_dir():
        return [], []
    found: list[tuple[str, str]] = []  # (target, relative path)
    problems: list[Problem] = []

    def bad(rel: str) -> None:
        problems.append(
            Problem(f"{shown}/{rel}", 1, 1, "KKC136", f"not a config override file: use {LAYOUT}")
        )

    for entry in sorted(top.iterdir()):
        if entry.is_dir():
            for sub in sorted(entry.iterdir()):
                rel = f"{entry.name}/{sub.name}"
                if sub.suffix == ".conf" and not sub.is_dir():
                    found.append((f"{entry.name}/{sub.stem}", rel))
                else:
                    bad(rel)
        elif entry.suffix == ".conf":
            found.append((entry.stem, entry.name))
        else:
            bad(entry.name)
    sources = []
    for target, rel in found:
        display = f"{shown}/{rel}"
        text = read_text(top / rel, display)
        try:
            entries = catalog.parse_ini(text)
        except catalog.IniSyntaxError as exc:
            problems.append(
                Problem(display, exc.line, 1, "KKC135", f"not an INI file: {exc.message}")
            )
            continue
        settings = tuple(
            Setting(section, option, value, Origin(display, line, 1, FILE_LAYER))
            for section, option, value, line in entries
        )
        sources.append(Source(target, settings, Origin(display, 1, 1, FILE_LAYER), True))
    return sources, problems


def _target_problem(src: Source, outputs: dict[str, ServiceOutput]) -> str | None:
    """Why ``src`` names no file of the site ("" for a service that is not enabled)."""
    if src.target == GLOBAL:
        return None
    service, _, component = src.target.partition("/")
    if service not in MAIN_CONF:
        near = difflib.get_close_matches(service, [GLOBAL, *MAIN_CONF], n=1, cutoff=0.6)
        hint = f'did you mean "{near[0]}"?' if near else f"known: {', '.join(MAIN_CONF)}"
        return f'no OpenStack service "{service}" with config files; {hint}'
    if service not in outputs:
        return ""
    names = components(outputs[service])
    if component and component not in names:
        near = difflib.get_close_matches(component, names, n=1, cutoff=0.6)
        hint = f'did you mean "{near[0]}"?' if near else f"components: {', '.join(names)}"
        return f'{service} has no component "{component}"; {hint}'
    return None


def _lines(cat: catalog.Catalog, setting: Setting) -> list[str]:
    if isinstance(setting.value, str):
        return [setting.value]
    opt = cat.lookup(setting.section, setting.option)
    return list(setting.value) if opt is not None and opt.multi else [",".join(setting.value)]


def _chain(sources: list[Source], target: str) -> list[Source]:
    """The sources that apply to ``target``, lowest first."""
    service, _, _ = target.partition("/")
    return [s for s in sources if s.target in (GLOBAL, service, target)]


def merge(ini: Ini, chain: list[Source], cat: catalog.Catalog) -> Ini:
    """``ini`` with the overrides of ``chain`` merged in (kolla-ansible's merge_configs)."""
    out = {section: dict(options) for section, options in ini.items()}
    for src in chain:
        new: dict[tuple[str, str], list[str]] = {}
        for s in src.settings:
            new.setdefault((s.section, s.option), []).extend(_lines(cat, s))
        for (section, option), values in new.items():
            out.setdefault(section, {})[option] = values if len(values) > 1 else values[0]
    return out


def _targets(out: ServiceOutput) -> Iterator[tuple[KollaConfig, str]]:
    """(container config, override target) of every container with the main file."""
    conf = MAIN_CONF.get(out.name)
    for kc, component in _containers(out):
        if conf in kc.inis:
            yield kc, f"{out.name}/{component}" if component else out.name


def load(site: Site) -> tuple[list[Source], list[str]]:
    """Every override source of the site, checked: (sources in precedence order,
    warnings). Raises InputError listing every problem."""
    outputs = {o.name: o for o in enabled_services(site)}
    sources, problems = _file_sources(site)
    kept = []
    for src in [*_yaml_sources(site), *sources]:
        why = _target_problem(src, outputs)
        if why:
            o = src.origin
            what = "" if src.from_file else f"config.{src.target}: "
            problems.append(Problem(o.path, o.line, o.col, "KKC136", what + why))
        elif why is None:
            kept.append(src)
    kept.sort(key=lambda s: s.rank)
    if problems:
        raise InputError(sorted(problems, key=lambda p: (p.path, p.line, p.col)))

    release = site.get("openstack.release")
    found: dict[Problem, str] = {}
    for out in outputs.values():
        for kc, target in _targets(out):
            chain = _chain(kept, target)
            if not chain:
                continue
            conf = MAIN_CONF[out.name]
            cat = catalog.load(release, conf)
            entries: list[tuple[str, str, str, Any]] = [
                (section, option, value, None)
                for section, option, value in ini_entries(kc.inis[conf].ini)
            ]
            entries += [
                (s.section, s.option, line, s.origin)
                for src in chain
                for s in src.settings
                for line in _lines(cat, s)
            ]
            aliases = catalog.backend_aliases(cat, entries)
            for f in catalog.check_options(cat, entries, section_aliases=aliases):
                if f.location is None:
                    continue  # kkc's own options: lint.check_ini's business
                suffix = f" ({conf} of {release})" if f.code == "KKC130" else ""
                o = f.location
                found[Problem(o.path, o.line, o.col, f.code, f.message + suffix)] = f.severity
    errors = sorted(
        (p for p, sev in found.items() if sev == catalog.ERROR),
        key=lambda p: (p.path, p.line, p.col, p.message),
    )
    if errors:
        raise InputError(errors)
    warnings = sorted(
        (p for p, sev in found.items() if sev != catalog.ERROR),
        key=lambda p: (p.path, p.line, p.col, p.message),
    )
    return kept, [f"warning: {p}" for p in warnings]


def apply(site: Site, outputs: list[ServiceOutput]) -> None:
    """Merge the site's overrides into the main config file of every container."""
    release = site.get("openstack.release")
    for out in outputs:
        for kc, target in _targets(out):
            chain = _chain(site.overrides, target)
            if not chain:
                continue
            conf = MAIN_CONF[out.name]
            old = kc.inis[conf]
            new = IniFile(merge(old.ini, chain, catalog.load(release, conf)), old.header)
            kc.set_ini(conf, new)


def overridden(site: Site) -> set[tuple[str, str]]:
    """(section, option) of every override: their findings are reported at the source."""
    return {(s.section, s.option) for src in site.overrides for s in src.settings}


def explain(site: Site, target: str, section: str, option: str) -> tuple[Any, list[Origin]]:
    """The value ``target`` (``global``, a service or ``<service>/<component>``) gets for
    [section] option from the overrides, and their origins: the winning ones first, then
    the overridden ones (latest first). (None, []) when no override sets it."""
    chain = _chain(site.overrides, target)
    hits = [
        [s for s in src.settings if (s.section, s.option) == (section, option)] for src in chain
    ]
    hits = [h for h in hits if h]
    if not hits:
        return None, []
    values = [v for s in hits[-1] for v in ((s.value,) if isinstance(s.value, str) else s.value)]
    origins = [s.origin for s in hits[-1]]
    for earlier in reversed(hits[:-1]):
        origins += [
            Origin(o.path, o.line, o.col, o.layer, overridden=True)
            for o in (s.origin for s in earlier)
        ]
    return (values[0] if len(values) == 1 else values), origins
