"""The secret drop-ins of a service's output, and the secret references of the site's
config overrides in them (see :mod:`kkc.overrides`): a YAML ``{secret: <name>}`` override
of a main file goes into the drop-in (a key of ``<svc>-secrets`` whose
``/etc/<svc>/<svc>.conf.d/`` copy overrides the main file), never into a ConfigMap.
"""

from __future__ import annotations

from collections.abc import Iterator

from .. import catalog
from ..kolla import SECRET_DIR, Ini, KollaConfig, render_ini
from ..model import GLOBAL, SecretRef, Setting, Site, Source, sources_for
from .common import DROP_IN_DEST, SecretKey, SecretSpec, ServiceOutput


def settings_in(src: Source, cat: catalog.Catalog) -> Iterator[Setting]:
    """The settings of ``src`` for a file of catalog ``cat``: global ones only where the
    service has the option (as oslo.config ignores the others, kolla-ansible's global.conf
    serves every service that knows an option)."""
    shared = src.target == GLOBAL
    return (s for s in src.settings if not shared or cat.lookup(s.section, s.option))


def containers(out: ServiceOutput) -> Iterator[tuple[KollaConfig, str | None]]:
    """Every container config of the service, with its component (None: a bring-up Job)."""
    for kcs in out.configs.values():
        for kc in kcs:
            yield kc, kc.name.removesuffix("-kolla")
    for job in (out.db_sync, out.db_finish):
        if job:
            for step in job.steps:
                yield step.config, None


def drop_ins(out: ServiceOutput) -> dict[str, set[str | None]]:
    """The secret drop-ins of a service: ``<svc>-secrets`` key -> the components whose
    containers copy it into /etc/<svc>/<svc>.conf.d/ (None: a bring-up Job)."""
    dest = DROP_IN_DEST.format(svc=out.name)
    found: dict[str, set[str | None]] = {}
    for kc, component in containers(out):
        for copy in kc.copies:
            if copy["dest"] == dest:
                key = copy["source"].removeprefix(f"{SECRET_DIR}/")
                found.setdefault(key, set()).add(component)
    return found


def add_secret_refs(site: Site, out: ServiceOutput) -> None:
    """Put the secret references of the site's overrides into the secret drop-ins of
    ``out``: each drop-in gets those of the sources that reach every container copying it
    (``global``, ``<service>``, and ``<service>/<component>`` when that component is its
    only user), as a template over a key of ``<svc>-secrets`` filled from the store entry
    (a key already filled from that entry, else a new key named like the entry)."""
    if out.name not in catalog.MAIN_CONF or not any(src.refs for src in site.overrides):
        return
    conf_of = {k.key: k.conf_file for spec in out.secrets for k in spec.keys if k.conf_file}
    for key, users in sorted(drop_ins(out).items()):
        component = next(iter(users)) if len(users) == 1 else None
        cat = catalog.load(site.get("openstack.release"), conf_of[key])
        won: dict[tuple[str, str], Setting] = {}
        for src in sources_for(site.overrides, out.name, component, None):
            won.update({(s.section, s.option): s for s in settings_in(src, cat)})
        refs = [s for s in won.values() if isinstance(s.value, SecretRef)]
        if refs:
            out.secrets = [
                _with_refs(spec, key, refs) if any(k.key == key for k in spec.keys) else spec
                for spec in out.secrets
            ]


def _with_refs(spec: SecretSpec, drop_in: str, refs: list[Setting]) -> SecretSpec:
    keys = list(spec.keys)
    filled = {k.source: k.key for k in keys if k.source}
    at = next(i for i, k in enumerate(keys) if k.key == drop_in)
    ini: Ini = {}
    for section, option, value, _ in catalog.parse_ini(keys[at].template or ""):
        ini.setdefault(section, {})[option] = value
    for s in refs:
        assert isinstance(s.value, SecretRef)
        name = s.value.name
        if name not in filled:
            filled[name] = name
            what = f"secret store entry {name} (config override [{s.section}] {s.option})"
            keys.insert(at, SecretKey(name, what, source=name))
            at += 1
        ini.setdefault(s.section, {})[s.option] = s.value.template(filled[name])
    old = keys[at]
    overrides = ", ".join(f"[{s.section}] {s.option}" for s in refs)
    keys[at] = SecretKey(
        old.key,
        f"{old.description}; config overrides {overrides}",
        template=render_ini(ini, ""),
        conf_file=old.conf_file,
    )
    return SecretSpec(spec.name, spec.purpose, tuple(keys), spec.created_by)
