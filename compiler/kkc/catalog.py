"""OpenStack option catalogs: which sections and options each config file of each
supported release has, and a checker for the options a base renders.

The catalogs are package data (``kkc/data/catalogs/<release>.json.gz``), generated from
the real OpenStack packages by ``tools/gen-option-catalog`` (its docstring says how and
from which versions). One catalog holds, per config file (``nova.conf``,
``ml2_conf.ini``, ...), every oslo.config group with its options trimmed to type,
default, min, max, choices, deprecation, secret and multi; the old names of renamed
options with their replacement; and, per release, the options of every keystoneauth1
auth plugin.

Codes of the findings:

- KKC130 unknown section or option (with a did-you-mean), KKC131 wrong type,
  KKC132 out of range or not an allowed choice, KKC133 deprecated (a warning naming the
  replacement), KKC134 secret option set in plain text;
- a :class:`Reference` value (a config override's secret reference) is only checked to
  fit the option: KKC131 for a number, a boolean or an option with allowed values;
- KKC310 is KKC130 in a rendered INI file (:func:`check_ini_text`): a base renders an
  option that the release does not have.

Sections whose name is chosen by the deployer are matched to the group whose options
apply: ``section_aliases`` (e.g. a cinder back-end ``rbd-1`` -> ``backend_defaults``),
and without being told: the sections named by ``[DEFAULT] config_source`` (oslo.config's
configuration source drivers), ``privsep_*`` sections (oslo.privsep contexts), a section
named by an ``auth_section`` option (keystoneauth1), and in :func:`check_ini_text` the
back-ends of cinder's and glance's ``enabled_backends``.
"""

from __future__ import annotations

import difflib
import gzip
import ipaddress
import json
import re
import urllib.parse
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

from .releases import RELEASES

ERROR = "error"
WARNING = "warning"

CONF_FILES = (
    "keystone.conf",
    "glance-api.conf",
    "nova.conf",
    "placement.conf",
    "neutron.conf",
    "ml2_conf.ini",
    "neutron_ovn_metadata_agent.ini",
    "cinder.conf",
    "heat.conf",
)
# The main file of each service: where its overrides and its secret drop-in go
# (kolla-ansible's <service>.conf).
MAIN_CONF = {
    "keystone": "keystone.conf",
    "glance": "glance-api.conf",
    "placement": "placement.conf",
    "cinder": "cinder.conf",
    "neutron": "neutron.conf",
    "nova": "nova.conf",
    "heat": "heat.conf",
}

# A section named by an ``auth_section`` option takes the options of an auth plugin.
AUTH_SECTION = "<keystoneauth plugin>"

_TRUE = ("true", "1", "on", "yes")
_FALSE = ("false", "0", "off", "no")
_HOST_LABEL = re.compile(r"(?!-)[A-Z0-9-]{1,63}(?<!-)$", re.IGNORECASE)
_DOMAIN_LABEL = re.compile(r"(?!-)[A-Z0-9-_]{1,63}(?<!-)$", re.IGNORECASE)
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*$")
# a value that refers to another option ($name, ${group.name}); $$ is a literal $
_SUBSTITUTION = re.compile(r"(?<!\$)(?:\$\$)*\$(?!\$)")


@dataclass(frozen=True)
class Option:
    """One option of a catalog. ``replacement`` is (group, name) for an old name."""

    section: str
    name: str
    type: str
    default: Any = None
    min: float | None = None
    max: float | None = None
    choices: tuple[Any, ...] = ()
    deprecated: bool = False
    replacement: tuple[str, str] | None = None
    secret: bool = False
    multi: bool = False


@dataclass(frozen=True)
class Finding:
    """One problem with an option; ``location`` is whatever the caller passed in (for
    :func:`check_ini_text`, the 1-based line number)."""

    code: str
    severity: str  # "error" or "warning"
    section: str
    option: str | None
    message: str
    location: Any = None

    def __str__(self) -> str:
        return f"{self.code} {self.message}"


@dataclass(frozen=True)
class DynamicGroup:
    """An oslo.config group whose sections are named by the values of ``owner`` (in
    DEFAULT) and told apart by their ``driver_option`` (oslo.config's config sources)."""

    group: str
    owner: str
    driver_option: str
    driver: str


def _group_key(section: str) -> str:
    """oslo.config matches group names case-insensitively, except DEFAULT."""
    return section if section == "DEFAULT" else section.lower()


def _option(section: str, name: str, data: Mapping[str, Any]) -> Option:
    repl = data.get("replacement")
    return Option(
        section=section,
        name=name,
        type=data.get("type", "string"),
        default=data.get("default"),
        min=data.get("min"),
        max=data.get("max"),
        choices=tuple(data.get("choices") or ()),
        deprecated=bool(data.get("deprecated")),
        replacement=tuple(repl) if repl else None,  # type: ignore[arg-type]
        secret=bool(data.get("secret")),
        multi=bool(data.get("multi")),
    )


@dataclass
class Catalog:
    """The options of one config file of one release."""

    release: str
    conf_file: str
    packages: dict[str, str]
    groups: dict[str, dict[str, Option]]
    old_names: dict[tuple[str, str], Option]  # (old group, old name) -> deprecated Option
    auth_plugins: dict[str, dict[str, Option]]
    dynamic: dict[str, DynamicGroup] = field(default_factory=dict)

    def sections(self) -> list[str]:
        return sorted(self.groups)

    def has_section(self, section: str) -> bool:
        return _group_key(section) in self.groups

    def options(self, section: str) -> dict[str, Option]:
        return self.groups.get(_group_key(section), {})

    def is_auth_section(self, section: str) -> bool:
        """A keystoneauth1 section: its ``auth_type`` plugin adds options."""
        return "auth_type" in self.options(section)

    def plugin_options(self, auth_type: str | None) -> dict[str, Option]:
        """The options of one auth plugin, or of every plugin when it is not known."""
        if auth_type:
            return self.auth_plugins.get(auth_type, {})
        merged: dict[str, Option] = {}
        for name in sorted(self.auth_plugins):
            for key, opt in self.auth_plugins[name].items():
                merged.setdefault(key, opt)
        return merged

    def lookup(self, section: str, option: str, *, auth_type: str | None = None) -> Option | None:
        """The option ``option`` of group ``section``: a live option, an old (deprecated)
        name of one, or in a keystoneauth1 section an option of the ``auth_type`` plugin
        (of any plugin when ``auth_type`` is None). None when the catalog has none."""
        key = _group_key(section)
        if section == AUTH_SECTION:
            if option in ("auth_type", "auth_section"):
                return Option(section, option, "string")
            return self.plugin_options(auth_type).get(option)
        found = self.groups.get(key, {}).get(option)
        if found is None:
            found = self.old_names.get((key, option))
        if found is None and self.is_auth_section(section):
            found = self.plugin_options(auth_type).get(option)
        return found


def _data_path(release: str):  # -> Traversable
    return resources.files("kkc") / "data" / "catalogs" / f"{release}.json.gz"


@cache
def _release_data(release: str) -> dict[str, Any]:
    if release not in RELEASES:
        raise KeyError(f"unsupported OpenStack release {release!r}")
    raw = _data_path(release).read_bytes()
    return json.loads(gzip.decompress(raw))


@cache
def load(release: str, conf_file: str) -> Catalog:
    """The catalog of ``conf_file`` (e.g. ``"nova.conf"``) in ``release`` (cached)."""
    data = _release_data(release)
    files = data["files"]
    if conf_file not in files:
        raise KeyError(f"no option catalog for {conf_file!r} (known: {', '.join(sorted(files))})")
    fdata = files[conf_file]
    groups = {
        _group_key(group): {name: _option(group, name, opt) for name, opt in opts.items()}
        for group, opts in fdata["groups"].items()
    }
    old_names: dict[tuple[str, str], Option] = {}
    for old_group, names in fdata.get("deprecated_names", {}).items():
        for old_name, (new_group, new_name) in names.items():
            new = groups.get(_group_key(new_group), {}).get(new_name)
            base = new or Option(new_group, new_name, "string")
            old_names[(_group_key(old_group), old_name)] = Option(
                section=old_group,
                name=old_name,
                type=base.type,
                default=base.default,
                min=base.min,
                max=base.max,
                choices=base.choices,
                deprecated=True,
                replacement=(new_group, new_name),
                secret=base.secret,
                multi=base.multi,
            )
    plugins = {
        name: {key: _option(AUTH_SECTION, key, opt) for key, opt in opts.items()}
        for name, opts in data.get("auth_plugins", {}).items()
    }
    dynamic = {
        _group_key(group): DynamicGroup(
            _group_key(group), d["owner"], d["driver_option"], d["driver"]
        )
        for group, d in fdata.get("dynamic", {}).items()
    }
    return Catalog(
        release=release,
        conf_file=conf_file,
        packages=dict(data.get("packages", {})),
        groups=groups,
        old_names=old_names,
        auth_plugins=plugins,
        dynamic=dynamic,
    )


# --- value checks (oslo.config's types) -------------------------------------------------


def _is_substituted(value: str) -> bool:
    """True when the value refers to another option; oslo.config fills it in later."""
    return bool(_SUBSTITUTION.search(value))


def _hostname(value: str, label: re.Pattern[str]) -> bool:
    if not value or len(value) > 253:
        return False
    value = value[:-1] if value.endswith(".") else value
    parts = value.split(".")
    if not re.search(r"[A-Za-z-]", parts[-1]):
        return False
    return all(label.match(p) for p in parts)


def _ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _uri(value: str) -> bool:
    try:
        parts = urllib.parse.urlsplit(value)
        host = parts.hostname
    except ValueError:
        return False
    return bool(_SCHEME.match(parts.scheme or "")) and bool(host)


def _number(kind: str, value: str) -> float | int | None:
    """The number in ``value`` (None for an empty value, which oslo reads as unset);
    raises ValueError when it is not one."""
    s = value.strip()
    if s == "":
        return None
    return float(s) if kind == "float" else int(s)


_EXPECTED = {
    "integer": "an integer",
    "port": "a port number",
    "float": "a number",
    "boolean": "a boolean (true/false, yes/no, on/off, 1/0)",
    "uri": "a URI with a scheme and a host",
    "dict": "key:value pairs separated by commas",
    "ipaddress": "an IP address",
    "hostname": "a host name",
    "hostaddress": "an IP address or a host name",
    "hostdomain": "an IP address or a domain name",
}


def _type_ok(kind: str, value: str) -> bool:
    if kind in ("integer", "port", "float"):
        try:
            _number(kind, value)
        except ValueError:
            return False
        return True
    if kind == "boolean":
        return value.lower() in _TRUE + _FALSE
    if kind == "uri":
        return _uri(value)
    if kind == "dict":
        # oslo joins a pair without ':' to the next one; only a trailing one fails
        return value.strip() == "" or ":" in value.split(",")[-1]
    if kind == "ipaddress":
        return _ip(value)
    if kind == "hostname":
        return _hostname(value, _HOST_LABEL)
    if kind == "hostaddress":
        return _ip(value) or _hostname(value, _HOST_LABEL)
    if kind == "hostdomain":
        return _ip(value) or _hostname(value, _HOST_LABEL) or _hostname(value, _DOMAIN_LABEL)
    return True  # string, list (of strings), unknown types


class Reference(str):
    """A value that comes from the secret store (a config override's ``{secret: <name>}``):
    unknown to kkc, so only checked to be a free-form string option."""


def _reference_problem(opt: Option) -> str | None:
    if opt.type in ("integer", "port", "float", "boolean"):
        return (
            f"a secret reference fills only string options; this one expects {_EXPECTED[opt.type]}"
        )
    if opt.choices:
        allowed = ", ".join(str(c) for c in opt.choices)
        return f"a secret reference cannot fill an option with allowed values ({allowed})"
    return None


def _fmt_num(n: float) -> str:
    return f"{n:g}" if isinstance(n, float) else str(n)


def _choice_ok(opt: Option, value: str) -> bool:
    if opt.type in ("integer", "port", "float"):
        try:
            number = _number(opt.type, value)
        except ValueError:
            return True  # reported as a type error
        return number is None or number in opt.choices
    allowed = {str(c) for c in opt.choices if c is not None}
    if value in allowed:
        return True
    # some options ignore case (oslo's String(ignore_case=True)); the catalog cannot tell
    return value.lower() in {c.lower() for c in allowed}


def _value_findings(
    label: str, section: str, name: str, opt: Option, value: str, location: Any
) -> list[Finding]:
    if _is_substituted(value):
        return []
    shown = "a value" if opt.secret else json.dumps(value)
    if not _type_ok(opt.type, value):
        return [
            Finding(
                "KKC131",
                ERROR,
                section,
                name,
                f"{label}: expected {_EXPECTED[opt.type]}, got {shown}",
                location,
            )
        ]
    if opt.choices:
        if not _choice_ok(opt, value):
            allowed = ", ".join(str(c) for c in opt.choices)
            return [
                Finding(
                    "KKC132",
                    ERROR,
                    section,
                    name,
                    f"{label}: {shown} is not one of the allowed values: {allowed}",
                    location,
                )
            ]
        return []
    if opt.type in ("integer", "port", "float") and (opt.min is not None or opt.max is not None):
        number = _number(opt.type, value)
        if number is None:
            return []
        if opt.min is not None and number < opt.min:
            return [
                Finding(
                    "KKC132",
                    ERROR,
                    section,
                    name,
                    f"{label}: {_fmt_num(number)} is below the minimum {_fmt_num(opt.min)}",
                    location,
                )
            ]
        if opt.max is not None and number > opt.max:
            return [
                Finding(
                    "KKC132",
                    ERROR,
                    section,
                    name,
                    f"{label}: {_fmt_num(number)} is above the maximum {_fmt_num(opt.max)}",
                    location,
                )
            ]
    return []


# --- the checker ------------------------------------------------------------------------


def _split_list(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def _suggest(word: str, candidates: Iterable[str]) -> str | None:
    """The closest candidate, ignoring case (``[Default]`` means ``[DEFAULT]``)."""
    by_folded: dict[str, str] = {}
    for name in sorted(set(candidates)):
        by_folded.setdefault(name.casefold(), name)
    near = difflib.get_close_matches(word.casefold(), sorted(by_folded), n=1, cutoff=0.6)
    return by_folded[near[0]] if near else None


def _section_aliases(
    catalog: Catalog, section_aliases: Mapping[str, str | Sequence[str]] | None
) -> dict[str, tuple[str, ...]]:
    """Each aliased section's groups; a group the catalog lacks is a programming error."""
    aliases: dict[str, tuple[str, ...]] = {}
    for section, target in (section_aliases or {}).items():
        groups = (target,) if isinstance(target, str) else tuple(target)
        for group in groups:
            if not catalog.has_section(group) and group != AUTH_SECTION:
                raise ValueError(
                    f"section alias {section!r} -> {group!r}: {catalog.conf_file} has no such group"
                )
        aliases[section] = groups
    return aliases


@dataclass
class _Sections:
    """Which catalog groups apply to a section of the checked entries: an alias, the
    section itself, or a section named by another option (``config_source``,
    ``auth_section``), or a ``privsep_*`` context."""

    catalog: Catalog
    aliases: dict[str, tuple[str, ...]]
    last: dict[tuple[str, str], str]  # (section, option) -> last value

    def __post_init__(self) -> None:
        self.config_sources = _split_list(self.last.get(("DEFAULT", "config_source"), ""))
        self.auth_sections = {
            v.strip() for (_s, o), v in self.last.items() if o == "auth_section" and v.strip()
        }

    def resolve(self, section: str) -> tuple[str, ...]:
        """The groups whose options apply to ``section`` (none: unknown section)."""
        catalog = self.catalog
        if section in self.aliases:
            return self.aliases[section]
        if catalog.has_section(section) and _group_key(section) not in catalog.dynamic:
            return (section,)
        if section in self.config_sources:
            driver = self.last.get((section, "driver"), "")
            for dyn in catalog.dynamic.values():
                if dyn.owner == "config_source" and dyn.driver == driver:
                    return (dyn.group,)
        if section in self.auth_sections:
            return (AUTH_SECTION,)
        if section.lower().startswith("privsep_") and catalog.has_section("privsep"):
            return ("privsep",)
        return ()


def _unknown_section(catalog: Catalog, section: str, location: Any) -> Finding:
    visible = [g for g in catalog.sections() if g not in catalog.dynamic]
    near = _suggest(section, visible)
    hint = f"; did you mean [{near}]?" if near else ""
    return Finding("KKC130", ERROR, section, None, f"[{section}]: unknown section{hint}", location)


def _unknown_option(
    catalog: Catalog,
    groups: tuple[str, ...],
    section: str,
    name: str,
    auth_type: str | None,
    location: Any,
) -> Finding:
    near = None
    for group in groups:
        candidates = set(catalog.options(group))
        if group == AUTH_SECTION or catalog.is_auth_section(group):
            candidates |= set(catalog.plugin_options(auth_type))
        near = near or _suggest(name, candidates)
    hint = f'; did you mean "{near}"?' if near else ""
    label = f"[{section}] {name}"
    return Finding("KKC130", ERROR, section, name, f"{label}: unknown option{hint}", location)


def _option_findings(
    catalog: Catalog,
    groups: tuple[str, ...],
    opt: Option,
    entry: tuple[str, str, Any, Any],
) -> list[Finding]:
    """KKC131-KKC134 and the value's type checks of one known option's entry
    ``(section, option name, value, location)``."""
    section, name, value, location = entry
    label = f"[{section}] {name}"
    found = []
    if isinstance(value, Reference):
        why = _reference_problem(opt)
        if why:
            found.append(Finding("KKC131", ERROR, section, name, f"{label}: {why}", location))
    is_auth = any(g == AUTH_SECTION or catalog.is_auth_section(g) for g in groups)
    if name == "auth_type" and value.strip() and is_auth:
        if value.strip() not in catalog.auth_plugins and not _is_substituted(value):
            near = _suggest(value.strip(), catalog.auth_plugins)
            hint = f'; did you mean "{near}"?' if near else ""
            found.append(
                Finding(
                    "KKC132",
                    ERROR,
                    section,
                    name,
                    f"{label}: unknown auth plugin {json.dumps(value.strip())}{hint}",
                    location,
                )
            )
    if opt.deprecated:
        if opt.replacement:
            new_group, new_name = opt.replacement
            text = f"{label}: deprecated; use [{new_group}] {new_name} instead"
        else:
            text = f"{label}: deprecated for removal"
        found.append(Finding("KKC133", WARNING, section, name, text, location))
    if isinstance(value, Reference):
        return found
    if opt.secret and value.strip():
        found.append(
            Finding(
                "KKC134",
                ERROR,
                section,
                name,
                f"{label}: secret option set in plain text (the value belongs in "
                "the service's secret drop-in)",
                location,
            )
        )
    return found + list(_value_findings(label, section, name, opt, value, location))


def check_options(
    catalog: Catalog,
    entries: Iterable[tuple[str, str, str, Any]],
    *,
    section_aliases: Mapping[str, str | Sequence[str]] | None = None,
) -> list[Finding]:
    """Check ``(section, option, value, location)`` entries (values as written in INI)
    against ``catalog``. ``section_aliases`` maps a section to the catalog group whose
    options apply to it (a cinder back-end section -> ``backend_defaults``), or to
    several groups, the options of all of them applying (the first one is used for
    suggestions first). Findings come in the order of the entries; an unknown section
    is reported once, at its first entry."""
    entries = list(entries)
    aliases = _section_aliases(catalog, section_aliases)
    last: dict[tuple[str, str], str] = {}  # (section, option) -> last value
    for section, option, value, _ in entries:
        last[(section, option.strip())] = value
    sections = _Sections(catalog, aliases, last)
    findings: list[Finding] = []
    reported_sections: set[str] = set()
    for section, option, value, location in entries:
        name = option.strip()
        groups = sections.resolve(section)
        if not groups:
            if section not in reported_sections:
                reported_sections.add(section)
                findings.append(_unknown_section(catalog, section, location))
            continue
        auth_type = last.get((section, "auth_type"), "").strip() or None
        opt = next(
            (
                found
                for group in groups
                if (found := catalog.lookup(group, name, auth_type=auth_type)) is not None
            ),
            None,
        )
        if opt is None:
            findings.append(_unknown_option(catalog, groups, section, name, auth_type, location))
            continue
        findings += _option_findings(catalog, groups, opt, (section, name, value, location))
    return findings


# --- rendered INI files -----------------------------------------------------------------


class IniSyntaxError(ValueError):
    def __init__(self, line: int, message: str):
        super().__init__(f"line {line}: {message}")
        self.line = line
        self.message = message


def parse_ini(text: str) -> list[tuple[str, str, str, int]]:
    """(section, option, value, line) of every assignment, the way oslo.config reads a
    file: repeated keys kept, ``key = value`` or ``key: value``, matching quotes around
    the value stripped, indented lines continue the value, ``#``/``;`` lines are
    comments. Raises :class:`IniSyntaxError`."""
    out: list[tuple[str, str, str, int]] = []
    section: str | None = None
    key: str | None = None
    start = 0
    value: list[str] = []

    def flush() -> None:
        nonlocal key, value
        if key is not None:
            if section is None:
                raise IniSyntaxError(start, "assignment before the first section")
            out.append((section, key, "\n".join(value), start))
        key, value = None, []

    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.rstrip()
        if not line:
            flush()
            continue
        if line.startswith((" ", "\t")):
            if key is None:
                raise IniSyntaxError(lineno, "unexpected continuation line")
            value.append(line.lstrip())
            continue
        flush()
        if line.startswith("["):
            if not line.endswith("]"):
                raise IniSyntaxError(lineno, "section header without ']'")
            if len(line) <= 2:
                raise IniSyntaxError(lineno, "empty section name")
            section = line[1:-1]
        elif line.startswith(("#", ";")):
            continue
        else:
            colon, equal = line.find(":"), line.find("=")
            if colon < 0 and equal < 0:
                raise IniSyntaxError(lineno, "no '=' or ':' in an assignment")
            cut = equal if colon < 0 or (0 <= equal < colon) else colon
            key, first = line[:cut].strip(), line[cut + 1 :].strip()
            if not key:
                raise IniSyntaxError(lineno, "empty key")
            if first and first[0] == first[-1] and first[0] in "\"'":
                first = first[1:-1]
            value, start = [first], lineno
    flush()
    return out


def _glance_store_group(catalog: Catalog, store: str) -> str:
    store = {"vmware": "vmware_datastore"}.get(store, store)
    for group in (store, f"glance.store.{store}.store"):
        if catalog.has_section(group):
            return group
    return "glance_store"


def backend_aliases(
    catalog: Catalog, entries: Iterable[tuple[str, str, str, Any]]
) -> dict[str, str | tuple[str, ...]]:
    """The sections that ``[DEFAULT] enabled_backends`` names: cinder's back-ends take
    ``backend_defaults`` and ``backend`` (``backend_host``, registered per back-end by
    cinder-volume); glance's ``id:store`` back-ends take their store's options, and
    glance's reserved stores (staging, tasks) the file store's."""
    enabled = ""
    for section, option, value, _ in entries:
        if section == "DEFAULT" and option.strip() == "enabled_backends":
            enabled = value
    aliases: dict[str, str | tuple[str, ...]] = {}
    if catalog.conf_file == "cinder.conf":
        groups = tuple(g for g in ("backend_defaults", "backend") if catalog.has_section(g))
        for name in _split_list(enabled):
            aliases[name] = groups
    elif catalog.conf_file == "glance-api.conf":
        for item in _split_list(enabled):
            name, _, store = item.partition(":")
            aliases[name.strip()] = _glance_store_group(catalog, store.strip())
        for reserved in ("os_glance_staging_store", "os_glance_tasks_store"):
            if not catalog.has_section(reserved):
                aliases[reserved] = _glance_store_group(catalog, "file")
    return aliases


def check_ini_text(release: str, conf_file: str, text: str) -> list[Finding]:
    """Check a rendered INI file (``conf_file`` names its catalog, e.g. ``nova.conf``).
    Each finding's ``location`` is its 1-based line number. An unknown section or option
    is KKC310; every finding but a deprecation (KKC133, a warning) is an error."""
    catalog = load(release, conf_file)
    try:
        entries = parse_ini(text)
    except IniSyntaxError as exc:
        return [Finding("KKC310", ERROR, "", None, f"not an INI file: {exc}", exc.line)]
    findings = check_options(catalog, entries, section_aliases=backend_aliases(catalog, entries))
    out = []
    for f in findings:
        if f.code == "KKC130":
            f = Finding(
                "KKC310",
                f.severity,
                f.section,
                f.option,
                f"{f.message} ({conf_file} of {release})",
                f.location,
            )
        out.append(f)
    return out
