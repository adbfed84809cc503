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

A YAML value ``{secret: <name>}`` (:class:`SecretRef`) is a secret reference: the option
goes into the service's secret drop-in (a key of ``<svc>-secrets`` whose
``/etc/<svc>/<svc>.conf.d/`` copy overrides the main file), filled from the secret store
entry ``<name>`` (:func:`kkc.generate.remote_key`), and out of the ConfigMaps. Only main
files take references, from ``global``, ``<service>`` and a ``<service>/<component>`` with
a drop-in of its own (``nova/nova-compute``); see :func:`kkc.services.secret_refs.add_secret_refs`.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from copy import deepcopy
from typing import Any

from . import catalog
from .errors import InputError, Problem
from .kolla import Ini, IniFile, KollaConfig, ini_entries, ini_value
from .model import GLOBAL, Origin, SecretRef, Setting, Site, Source, parse_target, sources_for
from .services import SERVICES, ServiceOutput
from .services.secret_refs import containers, drop_ins, settings_in
from .yamlio import read_text

FILE_LAYER = "config file"
LAYOUT = (
    "config/global.conf, config/<service>.conf, config/<service>/<component>.conf, "
    "config/<service>/<file> or config/<service>/<component>/<file>"
)


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
    found = {conf for kc, _ in containers(out) for conf in kc.inis}
    return sorted(found & set(catalog.CONF_FILES) - {catalog.MAIN_CONF[out.name]})


def _ref_target_problem(target: str, out: ServiceOutput) -> str | None:
    """Why no secret drop-in of ``out`` carries a secret reference of ``target`` alone."""
    service, component, file = parse_target(target)
    if file is not None:
        return (
            f"a secret reference goes into the secret drop-in of {catalog.MAIN_CONF[out.name]}, "
            f"not into {file}"
        )
    users = drop_ins(out).values()
    if component is None or {component} in users:
        return None
    own = sorted(str(next(iter(u))) for u in users if len(u) == 1 and None not in u)
    hint = f" (components with a drop-in of their own: {', '.join(own)})" if own else ""
    return (
        f"{component} shares its secret drop-in with other containers of {service}: "
        f'set the secret reference on "{service}"{hint}'
    )


def _yaml_target(target: str, section: str, option: str) -> str:
    """The YAML form of a secret reference for an option of ``target``."""
    return f"config: {{{target}: {{{section}: {{{option}: {{secret: <name>}}}}}}}}"


def _yaml_sources(site: Site) -> list[Source]:
    """One source per target and layer: a site's inline value outranks a fleet default
    of a more specific target."""
    layer_index = {layer.name: i for i, layer in enumerate(site.layers)}
    sources = []
    for target, sections in (site.get("config") or {}).items():
        by_layer: dict[int, list[Setting]] = {}
        for section, options in sections.items():
            for option, value in options.items():
                text: str | tuple[str, ...] | SecretRef
                if isinstance(value, dict):
                    text = SecretRef(value["secret"])
                elif isinstance(value, list):
                    text = tuple(ini_value(v) for v in value)
                else:
                    text = ini_value(value)
                origin = site.origins[("config", target, section, option)]
                setting = Setting(section, option, text, origin)
                by_layer.setdefault(layer_index.get(origin.layer, 0), []).append(setting)
        key = site.origins[("config", target)]
        for layer, settings in sorted(by_layer.items()):
            sources.append(Source(target, tuple(settings), key, False, layer))
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
        headers = tuple(
            (lineno, line.strip()[1:-1])
            for lineno, line in enumerate(text.splitlines(), start=1)
            if line.startswith("[") and line.rstrip().endswith("]")
        )
        sources.append(
            Source(target, settings, Origin(display, 1, 1, FILE_LAYER), True, headers=headers)
        )
    return sources, problems


def _section_origin(site: Site, src: Source, section: str, at: Origin) -> Origin:
    """Where ``section`` of ``src`` begins, seen from its option at ``at``: the file's
    ``[section]`` header above it, or the section's YAML key."""
    if src.from_file:
        above = [line for line, name in src.headers if name == section and line <= at.line]
        return Origin(at.path, max(above), 1, at.layer) if above else at
    return site.origins.get(("config", src.target, section), at)


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
    if isinstance(setting.value, SecretRef):
        return [catalog.Reference()]
    if isinstance(setting.value, str):
        return [setting.value]
    opt = cat.lookup(setting.section, setting.option)
    return list(setting.value) if opt is not None and opt.multi else [",".join(setting.value)]


def merge(ini: Ini, chain: list[Source], cat: catalog.Catalog) -> Ini:
    """``ini`` with the overrides of ``chain`` merged in (kolla-ansible's merge_configs)."""
    out = {section: dict(options) for section, options in ini.items()}
    for src in chain:
        new: dict[tuple[str, str], list[str]] = {}
        for s in settings_in(src, cat):
            new.setdefault((s.section, s.option), []).extend(_lines(cat, s))
        for (section, option), values in new.items():
            if isinstance(values[0], catalog.Reference):  # in the secret drop-in instead
                out.get(section, {}).pop(option, None)
            else:
                out.setdefault(section, {})[option] = values if len(values) > 1 else values[0]
    return out


def _targets(
    out: ServiceOutput, sources: list[Source]
) -> Iterator[tuple[KollaConfig, str, list[Source]]]:
    """(container config, file name, the sources that apply to it) of every INI file of
    the service that some override applies to."""
    if out.name not in catalog.MAIN_CONF:
        return
    for kc, component in containers(out):
        for conf in kc.inis:
            if conf not in catalog.CONF_FILES:
                continue
            file = None if conf == catalog.MAIN_CONF[out.name] else conf
            chain = sources_for(sources, out.name, component, file)
            if chain:
                yield kc, conf, chain


def service_outputs(site: Site) -> list[ServiceOutput]:
    """The enabled services' outputs as their render functions return them, before any
    override: rendered once per site and handed out as copies (callers change them). The
    check of the override targets (:func:`load`, while the site is loaded) needs them, and
    so does :func:`kkc.outputs.compute`, which then adds the overrides: one render of each
    service per command. The outputs are kept on the Site object (:attr:`Site.rendered`),
    whose values do not change once it is loaded."""
    if site.rendered is None:
        site.rendered = [build(site) for name, build in SERVICES.items() if site.enabled(name)]
    return deepcopy(site.rendered)


def _checked_targets(site: Site, outputs: dict[str, ServiceOutput]) -> list[Source]:
    """The override sources whose targets exist (KKC136) and can take a secret reference
    where they set one (KKC137), in precedence order. Raises InputError listing every
    problem."""
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
    for src in kept:
        service = parse_target(src.target)[0]
        reached = outputs.values() if service == GLOBAL else [outputs[service]]
        for why in dict.fromkeys(
            filter(None, (_ref_target_problem(src.target, o) for o in reached))
        ):
            for s in src.refs:
                o = s.origin
                what = f"config.{src.target}.{s.section}.{s.option}"
                problems.append(Problem(o.path, o.line, o.col, "KKC137", f"{what}: {why}"))
    if problems:
        raise InputError(sorted(problems, key=lambda p: (p.path, p.line, p.col)))
    return kept


def _override_problem(
    site: Site, out: ServiceOutput, chain: list[Source], f: catalog.Finding, where: str
) -> Problem:
    """The problem of a catalog finding at an override's setting; ``where`` names the
    config file and release (``nova.conf of 2026.1``)."""
    message = f.message + (f" ({where})" if f.code == "KKC130" else "")
    src = next(src for src in chain for s in src.settings if s.origin == f.location)
    if f.code == "KKC134" and parse_target(src.target)[2] is None:
        target = src.target
        if _ref_target_problem(target, out):
            target = out.name
        message = (
            f"[{f.section}] {f.option}: secret option set in plain text; reference "
            f"a secret of the store instead, in YAML: "
            f"{_yaml_target(target, f.section, str(f.option))}"
        )
    o = f.location
    if f.code == "KKC130" and f.option is None:  # an unknown section
        o = _section_origin(site, src, f.section, o)
    return Problem(o.path, o.line, o.col, f.code, message)


def _catalog_findings(
    site: Site, out: ServiceOutput, kept: list[Source], shared: set[Setting]
) -> dict[Problem, str]:
    """Problem -> severity of the overrides of one service's config files, checked with
    the file's kkc-set options against the release's catalog; the global settings that a
    file knows are removed from ``shared``."""
    release = site.get("openstack.release")
    found: dict[Problem, str] = {}
    for kc, conf, chain in _targets(out, kept):
        for p in _plain_over_ref(chain):
            found[p] = catalog.ERROR
        cat = catalog.load(release, conf)
        entries: list[tuple[str, str, str, Any]] = [
            (section, option, value, None)
            for section, option, value in ini_entries(kc.inis[conf].ini)
        ]
        entries += [
            (s.section, s.option, line, s.origin)
            for src in chain
            for s in settings_in(src, cat)
            for line in _lines(cat, s)
        ]
        shared.difference_update({s for s in shared if cat.lookup(s.section, s.option)})
        aliases = catalog.backend_aliases(cat, entries)
        for f in catalog.check_options(cat, entries, section_aliases=aliases):
            if f.location is None:
                continue  # kkc's own options: lint.check_ini's business
            found[_override_problem(site, out, chain, f, f"{conf} of {release}")] = f.severity
    return found


def _unknown_everywhere(
    site: Site, shared: set[Setting], kept: list[Source], services: list[str]
) -> list[Problem]:
    """KKC130 of each global setting that no main config file of the site's services knows."""
    release = site.get("openstack.release")
    mains = [
        catalog.load(release, catalog.MAIN_CONF[n]) for n in services if n in catalog.MAIN_CONF
    ]
    problems = []
    for s in shared:
        unknown = [
            f
            for cat in mains
            for f in catalog.check_options(cat, [(s.section, s.option, "", s.origin)])
            if f.code == "KKC130"
        ]
        first = next((f for f in unknown if "did you mean" in f.message), unknown[0])
        message, o = first.message, s.origin
        if first.option is None:  # an unknown section: one problem, at the section
            src = next(src for src in kept if s in src.settings)
            o = _section_origin(site, src, s.section, o)
        problems.append(Problem(o.path, o.line, o.col, "KKC130", f"{message} (in every service)"))
    return problems


def load(site: Site) -> tuple[list[Source], list[Problem]]:
    """Every override source of the site, checked: (sources in precedence order,
    warnings). Raises InputError listing every problem."""
    outputs = {o.name: o for o in service_outputs(site)}
    kept = _checked_targets(site, outputs)
    found: dict[Problem, str] = {}
    shared = {s for src in kept if src.target == GLOBAL for s in src.settings}
    for out in outputs.values():
        found.update(_catalog_findings(site, out, kept, shared))
    for p in _unknown_everywhere(site, shared, kept, list(outputs)):
        found[p] = catalog.ERROR

    def by_place(p: Problem) -> tuple[str, int, int, str]:
        return (p.path, p.line, p.col, p.message)

    errors = sorted((p for p, sev in found.items() if sev == catalog.ERROR), key=by_place)
    if errors:
        raise InputError(errors)
    warnings = sorted((p for p, sev in found.items() if sev != catalog.ERROR), key=by_place)
    return kept, [p.as_warning() for p in warnings]


def _plain_over_ref(chain: list[Source]) -> list[Problem]:
    """A plain value that wins over a secret reference of an earlier source: the secret
    drop-in overrides the main file, so the reference would still win."""
    refs: dict[tuple[str, str], Setting] = {}
    problems = []
    for src in chain:
        for s in src.settings:
            ref = refs.get((s.section, s.option))
            if isinstance(s.value, SecretRef):
                refs[(s.section, s.option)] = s
            elif ref is not None:
                r, o = ref.origin, s.origin
                problems.append(
                    Problem(
                        o.path,
                        o.line,
                        o.col,
                        "KKC137",
                        f"[{s.section}] {s.option}: set in plain text over the secret reference "
                        f"of {r.path}:{r.line}:{r.col}, which the secret drop-in would still "
                        "apply: set the option one way",
                    )
                )
    return problems


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


def explain_dotted(site: Site, dotted: str) -> tuple[Any, list[Origin]]:
    """``kkc show --explain config.<target>.<section>.<option>``: :func:`explain`; a
    shorter config path (a target, a section): what the layers set there."""
    path = dotted_path(dotted)
    if len(path) >= 4:
        return explain(site, path[1], ".".join(path[2:-1]), path[-1])
    return site.explain_at(path)


def explain(site: Site, target: str, section: str, option: str) -> tuple[Any, list[Origin]]:
    """The value ``target`` (``global``, a service or ``<service>/<component>``, each
    optionally followed by ``/<file>``) gets for [section] option from the overrides, and
    their origins: the winning ones first, then the overridden ones (latest first).
    (None, []) when no override sets it."""
    chain = sources_for(site.overrides, *parse_target(target))
    hits = [
        [s for s in src.settings if (s.section, s.option) == (section, option)] for src in chain
    ]
    hits = [h for h in hits if h]
    if not hits:
        return _unoverridden(site, target, section, option)
    values: list[Any] = []
    for s in hits[-1]:
        if isinstance(s.value, SecretRef):  # the name of the store entry, never its value
            values.append({"secret": s.value.name})
        else:
            values += [s.value] if isinstance(s.value, str) else s.value
    origins = [s.origin for s in hits[-1]]
    for earlier in reversed(hits[:-1]):
        origins += [
            Origin(o.path, o.line, o.col, o.layer, overridden=True)
            for o in (s.origin for s in earlier)
        ]
    return (values[0] if len(values) == 1 else values), origins


KKC_LAYER = "kkc (rendered by the base)"


def _unoverridden(site: Site, target: str, section: str, option: str) -> tuple[Any, list[Origin]]:
    """An option no override sets: kkc's own value, at its line in the rendered file of the
    first container of ``target`` that has it; else the option's default from the release's
    catalog. (None, []) for an option the file does not have."""
    service, component, file = parse_target(target)
    if service not in catalog.MAIN_CONF or not site.enabled(service):
        return None, []
    conf = file or catalog.MAIN_CONF[service]
    out = next(o for o in service_outputs(site) if o.name == service)
    apply(site, [out])  # the lines as written: other overrides move them
    for stage, kcs in out.configs.items():
        for kc in kcs:
            if conf not in kc.inis or component not in (None, kc.name.removesuffix("-kolla")):
                continue
            found = [
                (value, line)
                for sec, opt, value, line in catalog.parse_ini(kc.inis[conf].render())
                if (sec, opt) == (section, option)
            ]
            if found:
                path = f"deploy/{site.name}/stages/{stage}/config/{kc.name}/{conf}"
                values = [v for v, _ in found]
                value = values[0] if len(values) == 1 else values
                return value, [Origin(path, found[0][1], 1, KKC_LAYER)]
    release = site.get("openstack.release")
    opt = catalog.load(release, conf).lookup(section, option)
    if opt is None:
        return None, []
    return opt.default, [Origin(f"{conf} in {release}", 0, 0, "oslo.config default")]
