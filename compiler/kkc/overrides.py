"""OpenStack config overrides with kolla-ansible's semantics, checked against the option
catalog of the site's release.

Override files are named as under ``sites/<site>/config/``: ``global`` (every service),
``<service>`` (every container of the service, its bring-up Jobs included) and
``<service>/<component>`` (one component: a container named ``<component>-kolla``, e.g.
``nova/nova-compute``). Each targets the service's main config file (:data:`kkc.catalog.MAIN_CONF`).
The service's other INI files are named with the file at the end, like kolla-ansible's
``/etc/kolla/config/neutron/ml2_conf.ini``: ``<service>/<file>`` (every container of the
service with that file) and ``<service>/<component>/<file>`` (one component); ``global``
only targets main files.

Sources, lowest first; a later one wins per (section, option):

1. what kkc renders (the service modules);
2. the inline ``config:`` of the layers (already layered like every other key):
   ``config.global``, ``config.<service>``, ``config.<service>/<component>`` (and
   ``config.<service>/<file>``, ``config.<service>/<component>/<file>``);
3. the files ``sites/<site>/config/global.conf``, ``<service>.conf`` and
   ``<service>/<component>.conf`` (and ``<service>/<file>``,
   ``<service>/<component>/<file>``).

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
FILE_LAYER = "config file"
LAYOUT = (
    "config/global.conf, config/<service>.conf, config/<service>/<component>.conf, "
    "config/<service>/<file> or config/<service>/<component>/<file>"
)


def parse_target(target: str) -> tuple[str, str | None, str | None]:
    """(service, component, file) of an override target; file None: the main file. The
    last part names a file when it has a dot (``neutron/ml2_conf.ini``)."""
    parts = target.split("/")
    file = parts.pop() if len(parts) > 1 and "." in parts[-1] else None
    return parts[0], "/".join(parts[1:]) or None, file


def dotted_path(dotted: str) -> tuple[str, ...]:
    """``config.<target>.<section>.<option>`` (``kkc show --explain``) split at its dots,
    but for the dots of a file name ending the target (``config.neutron/ml2_conf.ini...``)."""
    head, _, rest = dotted.partition(".")
    for name in catalog.CONF_FILES:
        cut = rest.find(f"/{name}")
        end = cut + 1 + len(name)
        if cut >= 0 and rest[end : end + 1] in ("", "."):
            tail = rest[end + 1 :]
            return (head, rest[:end], *(tail.split(".") if tail else ()))
    return tuple(dotted.split("."))


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

    target: str  # "global", "<service>[/<component>]" or "<service>[/<component>]/<file>"
    settings: tuple[Setting, ...]
    origin: Origin  # the YAML key or the file
    from_file: bool

    @property
    def rank(self) -> tuple[int, int]:
        """Precedence: YAML before files, then global < service < component."""
        service, component, _ = parse_target(self.target)
        level = 0 if service == GLOBAL else 2 if component else 1
        return (int(self.from_file), level)

    def applies(self, service: str, component: str | None, file: str | None) -> bool:
        """Whether this source overrides ``file`` (None: the main file) of ``component``
        (None: a bring-up Job) of ``service``."""
        svc, comp, own = parse_target(self.target)
        if own != file:
            return False
        return svc == GLOBAL or (svc == service and comp in (None, component))

    def meaning(self) -> list[Any]:
        return [self.target, [[s.section, s.option, s.value] for s in self.settings]]


def components(out: ServiceOutput, conf: str | None = None) -> list[str]:
    """The component names of a service: its long-running containers with ``conf`` (by
    default the main file)."""
    conf = conf or catalog.MAIN_CONF[out.name]
    return sorted(
        kc.name.removesuffix("-kolla")
        for kcs in out.configs.values()
        for kc in kcs
        if conf in kc.inis
    )


def files(out: ServiceOutput) -> list[str]:
    """The INI files of a service other than its main file that can be overridden."""
    found = {conf for kc, _ in _containers(out) for conf in kc.inis}
    return sorted(found & set(catalog.CONF_FILES) - {catalog.MAIN_CONF[out.name]})


def _containers(out: ServiceOutput) -> Iterator[tuple[KollaConfig, str | None]]:
    """Every container config of the service, with its component (None: a bring-up Job)."""
    for kcs in out.configs.values():
        for kc in kcs:
            yield kc, kc.name.removesuffix("-kolla")
    for job in (out.db_sync, out.db_finish):
        if job:
            for step in job.steps:
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
                if sub.is_dir():  # <service>/<component>/<file>
                    for leaf in sorted(sub.iterdir()):
                        if leaf.is_dir() or "." not in leaf.name:
                            bad(f"{rel}/{leaf.name}")
                        else:
                            found.append((f"{rel}/{leaf.name}", f"{rel}/{leaf.name}"))
                elif sub.suffix == ".conf":  # <service>/<component>.conf
                    found.append((f"{entry.name}/{sub.stem}", rel))
                elif "." in sub.name:  # <service>/<file>
                    found.append((rel, rel))
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
    service, component, file = parse_target(src.target)
    if service == GLOBAL:
        return "global overrides only the main files: " + (
            "name it global.conf" if src.from_file else 'name it "global"'
        )
    if service not in catalog.MAIN_CONF:
        near = difflib.get_close_matches(service, [GLOBAL, *catalog.MAIN_CONF], n=1, cutoff=0.6)
        hint = f'did you mean "{near[0]}"?' if near else f"known: {', '.join(catalog.MAIN_CONF)}"
        return f'no OpenStack service "{service}" with config files; {hint}'
    if service not in outputs:
        return ""
    if file == catalog.MAIN_CONF[service]:
        return (
            f"{file} is the main file of {service}: name it {service}.conf or "
            f"{service}/<component>.conf"
            if src.from_file
            else f'{file} is the main file of {service}: name it "{service}" or '
            f'"{service}/<component>"'
        )
    if file is not None:
        known = files(outputs[service])
        if file not in known:
            near = difflib.get_close_matches(file, known, n=1, cutoff=0.6)
            hint = f'did you mean "{near[0]}"?' if near else f"files: {', '.join(known) or 'none'}"
            return f'{service} renders no other config file "{file}"; {hint}'
    names = components(outputs[service], file)
    if component and component not in names:
        near = difflib.get_close_matches(component, names, n=1, cutoff=0.6)
        hint = f'did you mean "{near[0]}"?' if near else f"components: {', '.join(names)}"
        with_file = f" with {file}" if file else ""
        return f'{service} has no component "{component}"{with_file}; {hint}'
    return None


def _lines(cat: catalog.Catalog, setting: Setting) -> list[str]:
    if isinstance(setting.value, str):
        return [setting.value]
    opt = cat.lookup(setting.section, setting.option)
    return list(setting.value) if opt is not None and opt.multi else [",".join(setting.value)]


def _chain(
    sources: list[Source], service: str, component: str | None, file: str | None
) -> list[Source]:
    """The sources that apply to ``file`` (None: the main file) of ``component`` of
    ``service``, lowest first."""
    return [s for s in sources if s.applies(service, component, file)]


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


def _targets(
    out: ServiceOutput, sources: list[Source]
) -> Iterator[tuple[KollaConfig, str, list[Source]]]:
    """(container config, file name, the sources that apply to it) of every INI file of
    the service that some override applies to."""
    if out.name not in catalog.MAIN_CONF:
        return
    for kc, component in _containers(out):
        for conf in kc.inis:
            if conf not in catalog.CONF_FILES:
                continue
            file = None if conf == catalog.MAIN_CONF[out.name] else conf
            chain = _chain(sources, out.name, component, file)
            if chain:
                yield kc, conf, chain


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
        for kc, conf, chain in _targets(out, kept):
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
    """Merge the site's overrides into the config files of every container."""
    release = site.get("openstack.release")
    for out in outputs:
        for kc, conf, chain in _targets(out, site.overrides):
            old = kc.inis[conf]
            new = IniFile(merge(old.ini, chain, catalog.load(release, conf)), old.header)
            kc.set_ini(conf, new)


def overridden(site: Site) -> set[tuple[str, str]]:
    """(section, option) of every override: their findings are reported at the source."""
    return {(s.section, s.option) for src in site.overrides for s in src.settings}


def explain(site: Site, target: str, section: str, option: str) -> tuple[Any, list[Origin]]:
    """The value ``target`` (``global``, a service or ``<service>/<component>``, each
    optionally followed by ``/<file>``) gets for [section] option from the overrides, and
    their origins: the winning ones first, then the overridden ones (latest first).
    (None, []) when no override sets it."""
    chain = _chain(site.overrides, *parse_target(target))
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
