"""Loading a site: find its layers, check each, merge them with provenance, check the
result, and resolve what the site's output needs besides (overlays, patches, config
overrides, the other sites sharing its AppProject). Returns a :class:`kkc.model.Site`.

Layers, lowest first: compiler defaults (compiler/kkc/data/defaults.yaml) < sites/defaults.yaml
< each listed overlay's defaults.yaml (in order) < sites/<site>/site.yaml.
Maps merge deeply; scalars and lists replace; an explicit null deletes an inherited key.

The top of the input side: it imports what it composes (overlays, patches, features,
overrides, gitops), and nothing below imports it.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from kubernetes_validate import utils as kv

from . import features, gitops, overlays, overrides, schema
from . import patches as patch_files
from .errors import InputError, Problem, SiteInvalid, UsageError, did_you_mean
from .features.network_policy import needs_nodes
from .model import (
    DNS_LABEL_RE,
    NOT_SECRET_PATHS,
    NOT_SECRET_SUBTREES,
    PUBLIC_HOSTS,
    RAFT_REPLICAS,
    RBD_USERS,
    REQUIRES,
    SECRET_CHECKED_ELSEWHERE,
    SECRETISH_KEY,
    STAGES,
    Layer,
    Origin,
    ProjectPeer,
    Site,
    locate,
    mariadb_operator,
    mariadb_replicas,
    rabbitmq_operator,
    rabbitmq_replicas,
    single_replica,
)
from .releases import RELEASES
from .yamlio import load_mapping, parse_mapping, to_plain


def find_root(start: Path) -> Path:
    """The site repository root: the nearest directory at or above ``start`` with sites/."""
    start = start.resolve()
    for candidate in (start, *start.parents):
        if (candidate / "sites").is_dir():
            return candidate
    raise UsageError(
        f"no sites/ directory in {start} or above; run kkc inside a site repository or pass --root"
    )


def list_sites(root: Path) -> list[str]:
    sites_dir = root / "sites"
    return sorted(
        p.name
        for p in sites_dir.iterdir()
        if (p / "site.yaml").is_file() and DNS_LABEL_RE.match(p.name)
    )


def check_site_name(root: Path, name: str) -> Path:
    """Validate a site name given on the command line; return its site.yaml path."""
    if not DNS_LABEL_RE.match(name) or len(name) > 63:
        raise InputError(
            Problem(
                "<command line>",
                1,
                1,
                "KKC122",
                f'site name "{name}" is not a DNS-1123 label (lowercase letters, digits and '
                '"-", at most 63 characters); a site is a directory directly under sites/',
            )
        )
    path = root / "sites" / name / "site.yaml"
    if not path.is_file():
        known = ", ".join(list_sites(root)) or "none"
        raise InputError(
            Problem(
                f"sites/{name}/site.yaml",
                1,
                1,
                "KKC123",
                f'site "{name}" not found (known sites: {known})',
            )
        )
    return path


def _plaintext_secrets(layer: Layer) -> list[Problem]:
    """Secret-looking keys with literal values, and literal values where a reference is due.
    Their paths go into ``layer.hidden``: neither validated nor merged (nothing shows them)."""
    problems: list[Problem] = []

    def walk(node: Any, path: tuple[str, ...]) -> None:
        if not isinstance(node, dict):
            return
        for key, value in node.items():
            here = (*path, str(key))
            if here in SECRET_CHECKED_ELSEWHERE or here in NOT_SECRET_SUBTREES:
                continue
            if path == ("secrets", "refs") and value is not None and not isinstance(value, dict):
                line, col = locate(layer.doc, here)
                layer.hidden.add(here)
                problems.append(
                    Problem(
                        layer.display,
                        line,
                        col,
                        "KKC121",
                        f"{schema.dotted(here)}: a secret reference must be a mapping "
                        "{key: <remote key>, property: <field>}; secret values never go in "
                        "site files (value not shown)",
                    )
                )
            elif (
                SECRETISH_KEY.search(str(key))
                and here not in NOT_SECRET_PATHS
                and path[-1:] != ("annotations",)  # names of Kubernetes annotations
                and isinstance(value, str | int | float)
                and not isinstance(value, bool)
            ):
                line, col = locate(layer.doc, here)
                layer.hidden.add(here)
                problems.append(
                    Problem(
                        layer.display,
                        line,
                        col,
                        "KKC121",
                        f"{schema.dotted(here)}: looks like a plain-text secret; secret values "
                        "never go in site files: reference one under secrets.refs "
                        "(value not shown)",
                    )
                )
            else:
                walk(value, here)

    walk(layer.doc, ())
    return problems


def _merge(
    target: dict[str, Any],
    origins: dict[tuple[str, ...], Origin],
    doc: Any,
    layer: Layer,
    prefix: tuple[str, ...] = (),
) -> None:
    for key, value in doc.items():
        key = str(key)
        path = (*prefix, key)
        if path in layer.hidden:
            continue
        line, col = locate(layer.doc, path, is_key=True)
        if value is None:
            target.pop(key, None)
            for p in [p for p in origins if p[: len(path)] == path]:
                del origins[p]
            origins[path] = Origin(layer.display, line, col, layer.name, deleted=True)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            origins[path] = Origin(layer.display, line, col, layer.name)
            _merge(target[key], origins, value, layer, path)
        else:
            for p in [p for p in origins if p[: len(path)] == path]:
                del origins[p]
            target[key] = to_plain(_drop_nulls(_drop_hidden(value, path, layer.hidden)))
            _record(origins, value, layer, path)


def _drop_nulls(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _drop_nulls(v) for k, v in node.items() if v is not None}
    return node


def _drop_hidden(node: Any, path: tuple[str, ...], hidden: set[tuple[str, ...]]) -> Any:
    """``node`` (the value at ``path``) without the plain-text secrets under it."""
    if not hidden or not isinstance(node, dict):
        return node
    return {
        k: _drop_hidden(v, (*path, str(k)), hidden)
        for k, v in node.items()
        if (*path, str(k)) not in hidden
    }


def _record(origins: dict[tuple[str, ...], Origin], value: Any, layer: Layer, path: tuple) -> None:
    line, col = locate(layer.doc, path, is_key=True)
    origins[path] = Origin(layer.display, line, col, layer.name)
    if isinstance(value, dict):
        for k, v in value.items():
            if v is not None and (*path, str(k)) not in layer.hidden:
                _record(origins, v, layer, (*path, str(k)))


@dataclass
class _Loaded:
    layers: list[Layer]
    problems: list[Problem]  # files that do not load, overlays missing or listed twice
    overlays: list[str]  # the listed overlays that exist, in order, each once
    broken: bool  # a file did not load: the merged layers are not the site


def defaults_display(root: Path, path: Path) -> str:
    """The compiler defaults' path as an operator finds the file: relative to the site
    repository (in a checkout of kkc: compiler/kkc/data/defaults.yaml) or to the working
    directory, else absolute (kkc installed in site-packages)."""
    real = path.resolve()
    bases = [root.resolve()]
    try:
        bases.append(Path.cwd().resolve())
    except OSError:  # the working directory is gone
        pass
    for base in bases:
        if real.is_relative_to(base):
            return real.relative_to(base).as_posix()
    return real.as_posix()


def _load_layers(
    root: Path,
    name: str,
    site_path: Path,
    skip: frozenset[str] = frozenset(),
    parsed: dict[str, Any] | None = None,
    *,
    collect: bool = False,
) -> _Loaded:
    """Load all layers; overlays come from the site's (or fleet's) `overlays` list.
    ``parsed``: documents already loaded, by display path (not read again). ``collect``:
    a file that does not load is a problem of the result (the other files still load),
    else it raises."""
    problems: list[Problem] = []
    broken = False

    def load(path: Path, display: str) -> Any:
        nonlocal broken
        if parsed and display in parsed:
            return parsed[display]
        try:
            return load_mapping(path, display)
        except InputError as exc:
            if not collect:
                raise
            problems.extend(exc.problems)
            broken = True
            return None

    layers: list[Layer] = []

    def add(layer_name: str, display: str, doc: Any) -> None:
        if doc is not None:
            layers.append(Layer(layer_name, display, doc))

    defaults = resources.files("kkc") / "data" / "defaults.yaml"
    with resources.as_file(defaults) as p:
        shown = defaults_display(root, p)
        add("compiler defaults", shown, load(p, shown))
    fleet = root / "sites" / "defaults.yaml"
    if fleet.exists():
        add("fleet defaults", "sites/defaults.yaml", load(fleet, "sites/defaults.yaml"))
    site_display = f"sites/{name}/site.yaml"
    site_doc = load(site_path, site_display)
    # The overlay list is itself a layered value: the site's list wins over the fleet's.
    # Unknown while a file that may hold it does not load.
    overlay_owner = (
        None
        if broken
        else next(
            (
                lay
                for lay in (Layer("site", site_display, site_doc), *reversed(layers))
                if "overlays" in lay.doc
            ),
            None,
        )
    )
    found, listed_problems = _listed_overlays(root, overlay_owner, skip)
    problems += listed_problems
    for ov in found:
        ov_defaults = root / "overlays" / ov / "defaults.yaml"
        if ov_defaults.exists():
            disp = f"overlays/{ov}/defaults.yaml"
            add(f"overlay {ov}", disp, load(ov_defaults, disp))
    add("site", site_display, site_doc)
    return _Loaded(layers, problems, found, broken)


def _listed_overlays(
    root: Path, owner: Layer | None, skip: frozenset[str]
) -> tuple[list[str], list[Problem]]:
    """The overlays of the list in ``owner`` (the layer whose ``overlays`` wins) that exist,
    in order, each once; and the problems of the others (listed twice, not found)."""
    names = owner.doc.get("overlays") if owner else None
    if owner is None or not isinstance(names, list):
        return [], []
    found: list[str] = []
    problems: list[Problem] = []
    first: dict[str, int] = {}
    ov_root = root / "overlays"
    known = sorted(p.name for p in ov_root.iterdir() if p.is_dir()) if ov_root.is_dir() else []
    for i, ov in enumerate(names):
        if not isinstance(ov, str) or not DNS_LABEL_RE.match(ov) or ov in skip:
            continue  # reported by the schema check, or left out on purpose
        line, col = locate(owner.doc, ("overlays", i))
        if ov in first:  # kustomize refuses a component listed twice
            fline, fcol = locate(owner.doc, ("overlays", first[ov]))
            problems.append(
                Problem(
                    owner.display,
                    line,
                    col,
                    "KKC112",
                    f'overlays[{i}]: overlay "{ov}" is already listed (at {fline}:{fcol}); '
                    "an overlay applies once",
                )
            )
            continue
        first[ov] = i
        if not (ov_root / ov).is_dir():
            hint = did_you_mean(ov, known) or (
                f" (overlays: {', '.join(known)})" if known else " (overlays/ has none)"
            )
            problems.append(
                Problem(
                    owner.display,
                    line,
                    col,
                    "KKC124",
                    f'overlay "{ov}" not found in overlays/{hint}',
                )
            )
            continue
        found.append(ov)
    return found, problems


def peek(root: Path, name: str, known: list[Layer]) -> dict[str, Any]:
    """Site ``name`` merged from its layers, neither validated nor resolved further: enough
    to choose the sites worth loading. Files among ``known`` (a loaded site's layers) are
    not read again; a file that does not parse raises, as loading the site would."""
    return _peek(root, name, {lay.display: lay.doc for lay in known})


def _peek(root: Path, name: str, parsed: dict[str, Any]) -> dict[str, Any]:
    """:func:`peek`, with ``parsed`` the documents read already by display path; the files
    it reads are added to it."""
    path = root / "sites" / name / "site.yaml"
    loaded = _load_layers(root, name, path, parsed=parsed)
    data: dict[str, Any] = {}
    for layer in loaded.layers:
        parsed.setdefault(layer.display, layer.doc)
        _merge(data, {}, layer.doc, layer)
    return data


class FleetIndex:
    """What loading sites reads of a repository's other sites (the cross-site facts, such
    as the sites that share an AppProject), read once however many sites are loaded: the
    site names, each site's AppProject from a peek at its merged layers (each file parsed
    once), and each peer that shares one, loaded once. It lives for one command: a load of
    several sites (:func:`kkc.build.load_sites`) shares one, so that a fleet's loads read
    each other site a fixed number of times rather than once per site loaded."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._names: list[str] | None = None
        self._parsed: dict[str, Any] = {}  # display path -> document
        self._keys: dict[str, tuple[str, str] | None] = {}  # name -> peeked project key
        self._loaded: dict[str, tuple[tuple[str, str] | None, ProjectPeer]] = {}

    def names(self) -> list[str]:
        if self._names is None:
            self._names = list_sites(self.root)
        return self._names

    def peeked_key(self, name: str, known: list[Layer]) -> tuple[str, str] | None:
        """The AppProject of site ``name`` as its merged layers name it (a cheap guess)."""
        if name not in self._keys:
            for layer in known:
                self._parsed.setdefault(layer.display, layer.doc)
            own = [d for d in self._parsed if d.startswith("sites/") and d.count("/") > 1]
            # the site of ``known`` too, while its files are at hand; then only the files
            # several sites share stay parsed (the fleet's defaults, the overlays'): one
            # kept per site would grow with the fleet
            for other in sorted({d.split("/")[1] for d in own} | {name}):
                if other not in self._keys:
                    peeked = _peek(self.root, other, self._parsed)
                    self._keys[other] = gitops.project_key(peeked, other)
            for display in [d for d in self._parsed if d.startswith("sites/") and d.count("/") > 1]:
                del self._parsed[display]
        return self._keys[name]

    def loaded(self, name: str) -> tuple[tuple[str, str] | None, ProjectPeer]:
        """The AppProject of site ``name`` once it is loaded (validated, resolved), and what
        a shared AppProject must admit of it."""
        if name not in self._loaded:
            self.add(load_site(self.root, name, cross_site=False))
        return self._loaded[name]

    def add(self, site: Site) -> None:
        """Record a site loaded (without skipped overlays), so it is not loaded again."""
        peer = ProjectPeer(site.name, site.get("gitops.repoURL"), site.get("namespace"))
        self._loaded[site.name] = (gitops.project_key(site.data, site.name), peer)


def _hide_plain_secrets(site: Site, problems: list[Problem]) -> None:
    """Replace the values of the config options set in plain text that are secrets
    (KKC134) in the site's data: what ``kkc show`` prints of a site that failed."""
    secret = {(p.path, p.line, p.col) for p in problems if p.code == "KKC134"}
    for path, o in site.origins.items():
        if path[0] == "config" and len(path) == 4 and (o.path, o.line, o.col) in secret:
            options = site._at(path[:3])
            if isinstance(options, dict) and path[3] in options:
                options[path[3]] = "(value not shown)"


def _misspelt(
    missing: tuple[Any, ...], layer_errors: list[tuple[tuple[Any, ...], Problem]]
) -> bool:
    """Whether a layer has an unknown key close to the required key ``missing`` lacks, in
    its mapping (the problem is that key, reported already)."""
    mapping, key = missing[:-1], str(missing[-1])
    return any(
        p.code == "KKC110" and path[:-1] == mapping and did_you_mean(str(path[-1]), [key])
        for path, p in layer_errors
    )


def _in_order(problems: list[Problem]) -> list[Problem]:
    """By file, line, column and code; problems at one place keep the order found."""
    return sorted(dict.fromkeys(problems), key=lambda p: (p.path, p.line, p.col, p.code))


def load_site(
    root: Path,
    name: str,
    skip_overlays: frozenset[str] = frozenset(),
    *,
    cross_site: bool = True,
    site_text: str | None = None,
    fleet: FleetIndex | None = None,
) -> Site:
    """Load, validate and resolve one site. Raises :class:`SiteInvalid` listing every
    problem found, with what could be resolved of the site.

    Every file is checked on its own (YAML, plain-text secrets, the schema), and the
    overlay list, the overlays' components and the site's patches besides; the merged
    definition is checked for required keys, and once all that passes, the checks that
    need valid values (dependencies, features, config overrides) run.

    ``skip_overlays``: resolve the site as if these were not in its overlays list.
    ``cross_site``: also resolve the facts its output needs from other sites (the sites
    that share its AppProject, :attr:`Site.project_peers`), so that rendering the site
    reads no other file; off for what renders nothing (``kkc show``, ``kkc secrets``).
    ``site_text``: the text of sites/<name>/site.yaml to use instead of the file's (`kkc
    set` validates an edit before writing it). ``fleet``: what is read of the other sites,
    shared by the loads of one command (else read for this load alone)."""
    site_path = check_site_name(root, name)
    display = f"sites/{name}/site.yaml"
    parsed = None
    if site_text is not None:
        try:
            parsed = {display: parse_mapping(site_text, display)}
        except InputError as exc:
            raise SiteInvalid(exc.problems) from None
    loaded = _load_layers(root, name, site_path, skip_overlays, parsed, collect=True)
    problems = list(loaded.problems)
    layer_errors: list[tuple[tuple[Any, ...], Problem]] = []
    for layer in loaded.layers:
        problems += _check_layer(layer, layer_errors)
    site = _merged(root, name, loaded.layers, skip_overlays)
    where = _locator(site)
    if not loaded.broken:
        merged_errors: list[tuple[tuple[Any, ...], Problem]] = []
        merged = schema.check(site.data, where, partial=False, found=merged_errors, site=name)
        # with a layer invalid, only what the merge adds (the layers' problems once): the
        # required keys missing, but for one a layer misspelt
        problems += (
            [
                p
                for path, p in merged_errors
                if p.code == "KKC113" and not _misspelt(path, layer_errors)
            ]
            if problems
            else merged
        )
    valid = not problems
    problems += overlays.check_dirs(root, loaded.overlays)
    site.patches, patch_problems = patch_files.load(root, name)
    problems += patch_problems
    if valid:  # the checks that need every value valid
        problems += _semantic_checks(site, where)
        problems += features.check(site, where)
    if problems:
        raise SiteInvalid(_in_order(problems), site)
    site.overlay_components = {stage: tuple(overlays.components(site, stage)) for stage in STAGES}
    conflicts = overlays.conflicts(site.layers, site) + overlays.component_conflicts(site)
    site.warnings += [p.as_warning() for p in conflicts + _empty_key_prefix(site, where)]

    try:
        site.overrides, override_warnings = overrides.load(site)
    except InputError as exc:
        _hide_plain_secrets(site, exc.problems)
        raise SiteInvalid(_in_order(exc.problems), site) from None
    site.warnings += override_warnings
    if fleet is not None and not skip_overlays:
        fleet.add(site)
    if cross_site:
        site.project_peers = _project_peers(site, fleet or FleetIndex(root))
    return site


def _secrets_emptied(layer: Layer) -> list[Problem]:
    """KKC150: ``secrets:`` left empty, or its ``backend`` nulled. An explicit null deletes
    what the layers below set, which would switch the site to ``backend: existing`` and
    drop every ExternalSecret (their Secrets are owned: a prune deletes them too)."""
    doc = layer.doc if isinstance(layer.doc, dict) else {}
    section = doc.get("secrets", {})
    if "secrets" in doc and (section is None or section == {}):
        path: tuple[str, ...] = ("secrets",)
        what = "an empty secrets: section"
    elif isinstance(section, dict) and "backend" in section and section["backend"] is None:
        path = ("secrets", "backend")
        what = "secrets.backend: null"
    else:
        return []
    line, col = locate(layer.doc, path, is_key=True)
    return [
        Problem(
            layer.display,
            line,
            col,
            "KKC150",
            f"{what} would delete the secret settings of the layers below and switch the "
            "site to secrets.backend existing, removing its ExternalSecrets (and, once "
            "pruned, the Secrets they own); set secrets.backend explicitly, or remove the line",
        )
    ]


def _check_layer(layer: Layer, found: list[tuple[tuple[Any, ...], Problem]]) -> list[Problem]:
    """The problems of one file on its own: plain-text secrets, an emptied secrets
    section, then the schema (which skips the secrets; their paths go into
    ``layer.hidden``). ``found``: each schema problem with its path, added to."""
    problems = _plaintext_secrets(layer) + _secrets_emptied(layer)
    problems += schema.check(
        _drop_hidden(to_plain(layer.doc), (), layer.hidden),
        lambda path, is_key, _missing: (layer.display, *locate(layer.doc, path, is_key)),
        partial=True,
        found=found,
    )
    return problems


def _merged(root: Path, name: str, layers: list[Layer], skip_overlays: frozenset[str]) -> Site:
    """The site the layers make, lowest first, each value with its origin."""
    data: dict[str, Any] = {}
    origins: dict[tuple[str, ...], Origin] = {}
    for layer in layers:
        _merge(data, origins, layer.doc, layer)
    if skip_overlays and isinstance(data.get("overlays"), list):
        data["overlays"] = [ov for ov in data["overlays"] if ov not in skip_overlays]
    _default_key_prefix(name, data, origins)
    site = Site(name=name, root=root, data=data, origins=origins, layers=layers)
    site.explain_config = functools.partial(overrides.explain_dotted, site)
    return site


def _default_key_prefix(
    name: str, data: dict[str, Any], origins: dict[tuple[str, ...], Origin]
) -> None:
    """An ExternalSecrets site that sets no ``secrets.keyPrefix`` reads its passwords under
    ``openstack/<site>/``: through a store that several sites share, a bare key would give
    every such site the same passwords."""
    secrets = data.get("secrets")
    if not isinstance(secrets, dict) or secrets.get("backend") != "external-secrets":
        return
    if "keyPrefix" not in secrets:
        secrets["keyPrefix"] = f"openstack/{name}/"
        origins[("secrets", "keyPrefix")] = Origin(
            "secrets.keyPrefix", 0, 0, "kkc default openstack/<site>/"
        )


def _empty_key_prefix(site: Site, where: Callable[..., tuple[str, int, int]]) -> list[Problem]:
    """KKC151 (a warning): ``keyPrefix: ""`` reads bare remote keys, which every other site
    on the same store that does so reads too."""
    if site.get("secrets.backend") != "external-secrets" or site.get("secrets.keyPrefix") != "":
        return []
    store = site.get("secrets.store") or {}
    return [
        Problem(
            *where(("secrets", "keyPrefix")),
            "KKC151",
            f"secrets.keyPrefix is empty: the site reads bare keys (database_password, ...) "
            f"from {store.get('kind')}/{store.get('name')}, and every site of that store "
            f"without a prefix reads the same passwords; set one such as openstack/{site.name}/",
        )
    ]


def _locator(site: Site) -> Callable[..., tuple[str, int, int]]:
    """``where(path, is_key=False, in_site=False)``: where a problem at a resolved path is
    shown: in the layer that set it (unless ``in_site``: a value the site must add), else
    in the site file."""
    site_display = f"sites/{site.name}/site.yaml"

    def where(
        path: tuple[Any, ...], is_key: bool = False, in_site: bool = False
    ) -> tuple[str, int, int]:
        for depth in range(len(path), 0, -1):
            if in_site:
                break
            origin = site.origins.get(tuple(str(p) for p in path[:depth]))
            if origin and not origin.deleted and origin.line:  # line 0: no file set it
                layer = next(lay for lay in site.layers if lay.display == origin.path)
                line, col = locate(layer.doc, path, is_key)
                return origin.path, line, col
        site_doc = next((lay.doc for lay in site.layers if lay.display == site_display), None)
        line, col = locate(site_doc, path, is_key)
        return site_display, line, col

    return where


def _project_peers(site: Site, fleet: FleetIndex) -> tuple[ProjectPeer, ...]:
    """The other sites of the repository whose Application is in the site's AppProject (the
    same gitops.project in the same gitops.namespace): the one AppProject must admit them
    all. A cheap peek at each site's merged layers chooses them; only those are loaded, and
    a site file among them that does not parse or validate stops this, as a guess could
    lock a site out of its project. ``fleet`` keeps what is read, for the next site."""
    key = gitops.project_key(site.data, site.name)
    if key is None:
        return ()
    peers = []
    for name in fleet.names():
        if name == site.name or fleet.peeked_key(name, site.layers) != key:
            continue
        loaded_key, peer = fleet.loaded(name)
        if loaded_key == key:
            peers.append(peer)
    return tuple(peers)


# A semantic check: the site, and ``add(path, code, message, is_key=False)``, which reports
# a problem at the resolved ``path`` (in the layer that set it).
Add = Callable[..., None]


def _name_is_the_directory(site: Site, add: Add) -> None:
    if site.get("name") != site.name:
        add(
            ("name",),
            "KKC125",
            f'is "{site.get("name")}" but the site directory is sites/{site.name}/',
        )


def _kubernetes_supported(site: Site, add: Add) -> None:
    k8s = site.get("kubernetes.version")
    supported = sorted(
        {kv.major_minor(v) for v in kv.all_versions()} - {f"1.{m}" for m in range(29)},
        key=lambda v: tuple(map(int, v.split("."))),
    )
    if k8s not in supported:
        add(
            ("kubernetes", "version"),
            "KKC115",
            f'Kubernetes "{k8s}" is not supported (supported: {", ".join(supported)})',
        )


def _distro_built(site: Site, add: Add) -> None:
    release, distro = site.get("openstack.release"), site.get("openstack.distro")
    if release in RELEASES and distro not in RELEASES[release].distros:
        add(
            ("openstack", "distro"),
            "KKC115",
            f'Kolla builds no "{distro}" images for OpenStack {release} '
            f"(available: {', '.join(sorted(RELEASES[release].distros))})",
        )


def _requirements(site: Site, add: Add) -> None:
    for svc, needs in REQUIRES.items():
        if not site.enabled(svc):
            continue
        for need in needs:
            if not site.enabled(need):
                add(
                    ("services", need, "enabled"),
                    "KKC120",
                    f"{svc} is enabled and needs {need}; enable {need} or disable {svc}",
                )


def _single_replicas(site: Site, add: Add) -> None:
    for (svc, comp), feature in single_replica(site).items():
        replicas = site.get(f"services.{svc}.{comp}.replicas", 1)
        if site.enabled(svc) and replicas != 1:
            add(
                ("services", svc, comp, "replicas"),
                "KKC126",
                f"must be 1: {feature}",
            )


def _raft_replicas(site: Site, add: Add) -> None:
    """A RAFT cluster (the OVN databases) has 1 member or an odd number of them."""
    for (svc, comp), allowed in RAFT_REPLICAS.items():
        replicas = site.get(f"services.{svc}.{comp}.replicas", 1)
        if site.enabled(svc) and replicas not in allowed:
            add(
                ("services", svc, comp, "replicas"),
                "KKC186",
                f"must be one of {', '.join(map(str, allowed))}: a RAFT cluster needs an odd "
                f"number of members (got {replicas})",
            )


def _galera_replicas(site: Site, add: Add) -> None:
    """A Galera cluster (provider mariadb-operator) has an odd number of members, at least
    three: with two, losing one loses the quorum; with an even number, a partition in halves
    stops both (the MariaDB CRD refuses even numbers too)."""
    replicas = mariadb_replicas(site)
    if site.enabled("mariadb") and mariadb_operator(site) and (replicas < 3 or replicas % 2 == 0):
        add(
            ("services", "mariadb", "server", "replicas"),
            "KKC187",
            f"must be odd and at least 3 with provider mariadb-operator: a Galera cluster "
            f"keeps its quorum only with a majority of an odd number of members (got {replicas})",
        )


def _rabbitmq_replicas(site: Site, add: Add) -> None:
    """A RabbitMQ cluster (provider rabbitmq-operator) has an odd number of members: quorum
    queues and pause_minority keep working only on a majority, which a partition of an even
    cluster in halves leaves to neither side (the operator tests 1, 3 and 5 only)."""
    replicas = rabbitmq_replicas(site)
    if site.enabled("rabbitmq") and rabbitmq_operator(site) and replicas % 2 == 0:
        add(
            ("services", "rabbitmq", "server", "replicas"),
            "KKC188",
            f"must be odd with provider rabbitmq-operator: quorum queues keep a majority "
            f"of an odd number of members only (got {replicas}; 3 is the default)",
        )


def _mariadb_backup(site: Site, add: Add) -> None:
    """mariadb-operator's scheduled backups go to exactly one place the site names."""
    backup = site.get("services.mariadb.backup") or {}
    if not (site.enabled("mariadb") and mariadb_operator(site) and backup.get("enabled")):
        return
    storage = sorted(backup.get("storage") or {})
    if not storage:
        add(
            ("services", "mariadb", "backup"),
            "KKC113",
            "storage is required with provider mariadb-operator and backup.enabled: "
            "storage.s3 (bucket, endpoint; credentials from the secret store) or "
            "storage.persistentVolumeClaim (size, storageClass); or set enabled: false",
        )
    elif len(storage) > 1:
        add(
            ("services", "mariadb", "backup", "storage"),
            "KKC112",
            f"names {' and '.join(storage)}: a Backup has one storage, choose one",
        )


def _public_hosts(site: Site, add: Add) -> None:
    for svc, hosts in PUBLIC_HOSTS.items():
        for host in hosts:
            if not site.enabled(svc) or site.get(f"endpoints.hosts.{host}"):
                continue
            add(
                ("endpoints", "hosts"),
                "KKC113",
                f"{svc} is enabled and needs a public host name (endpoints.hosts.{host})",
                is_key=True,
            )


def _rbd_secret_uuids(site: Site, add: Add) -> None:
    for svc, whose in (("cinder", "cinder user"), ("nova", "nova rbd user")):
        if (
            site.enabled(svc)
            and site.get(f"services.{svc}.backend") == "rbd"
            and not site.get(f"services.{svc}.rbd.secretUuid")
        ):
            add(
                ("services", svc, "rbd"),
                "KKC113",
                "the rbd back end needs secretUuid: the libvirt secret UUID under which the "
                f"computes hold the Ceph key of the {whose}",
                is_key=True,
            )


def _network_policy_nodes(site: Site, add: Add) -> None:
    """networkPolicy.nodeCIDRs: real networks, and present when node agents need them."""
    if not site.get("networkPolicy.enabled"):
        return
    cidrs = site.get("networkPolicy.nodeCIDRs") or []
    for i, cidr in enumerate(cidrs):
        try:
            ipaddress.ip_network(cidr)
        except ValueError as exc:
            add(("networkPolicy", "nodeCIDRs", i), "KKC112", f'"{cidr}" is not a network ({exc})')
    agents = needs_nodes(site)
    if not cidrs and agents:
        add(
            ("networkPolicy", "nodeCIDRs"),
            "KKC113",
            f"network policies are on and {', '.join(agents)} run with hostNetwork: list the "
            "nodes' address ranges so the servers they reach can admit them",
            is_key=True,
        )


def _libvirt_secret_conflict(site: Site) -> str:
    """Nova's and Cinder's RBD users become libvirt secrets on the computes, one per Ceph
    user (libvirt refuses a second secret for the usage name ``client.<user> secret``): one
    user must have one UUID, and one UUID belongs to one user (KKC155)."""
    if not all(site.enabled(s) and site.get(f"services.{s}.backend") == "rbd" for s in RBD_USERS):
        return ""
    nova, cinder = site.get("services.nova.rbd"), site.get("services.cinder.rbd")
    nova_uuid, cinder_uuid = nova.get("secretUuid"), cinder.get("secretUuid")
    same_user = nova["user"] == cinder["user"]
    if not nova_uuid or not cinder_uuid or same_user == (nova_uuid == cinder_uuid):
        return ""
    if same_user:
        return (
            f"must be services.cinder.rbd.secretUuid ({cinder_uuid}): Nova and Cinder both "
            f"use client.{nova['user']}, and libvirt holds one secret per Ceph user"
        )
    return (
        f"is already the libvirt secret of client.{cinder['user']} "
        f"(services.cinder.rbd.secretUuid); client.{nova['user']} needs a UUID of its own"
    )


def _libvirt_secrets(site: Site, add: Add) -> None:
    conflict = _libvirt_secret_conflict(site)
    if conflict:
        add(("services", "nova", "rbd", "secretUuid"), "KKC155", conflict)


def _secret_store(site: Site, add: Add) -> None:
    secrets = site.get("secrets", {})
    if secrets.get("backend") == "external-secrets" and not secrets.get("store"):
        add(
            ("secrets", "backend"),
            "KKC113",
            "external-secrets needs secrets.store "
            "({kind: ClusterSecretStore|SecretStore, name: ...})",
        )


def _gitops_repository(site: Site, add: Add) -> None:
    spec = site.get("gitops", {})
    if not spec.get("repoURL"):
        add(
            ("gitops",),
            "KKC113",
            "gitops.repoURL is required: the repository the controller watches",
            is_key=True,
        )
    elif spec.get("engine") == "flux" and not re.match(r"(https?|ssh)://", spec["repoURL"]):
        add(
            ("gitops", "repoURL"),
            "KKC160",
            "Flux's GitRepository takes http://, https:// or ssh:// URLs only "
            '(write git@host:path as "ssh://git@host/path")',
        )


def _flux_ssh_key(site: Site, add: Add) -> None:
    spec = site.get("gitops", {})
    if (
        spec.get("engine") == "flux"
        and str(spec.get("repoURL", "")).startswith(("ssh://", "git@"))
        and not spec.get("secretRef")
    ):
        add(
            ("gitops", "repoURL"),
            "KKC160",
            "Flux reaches an SSH repository only with a key: name the Secret that holds it "
            "(identity and known_hosts, in gitops.namespace) in gitops.secretRef",
        )


def _flux_names(site: Site, add: Add) -> None:
    longest = max(STAGES, key=len)
    if site.get("gitops.engine") == "flux" and len(f"{site.name}-{longest}") > 63:
        add(
            ("name",),
            "KKC160",
            f"Flux Kustomizations are named <site>-<stage> (e.g. {site.name}-{longest}), "
            f"and those names must fit a 63-character label value; use a site name of at most "
            f"{62 - len(longest)} characters",
        )


# The checks of a valid merged definition, in the order their problems are listed at one
# place; kkc.features adds its own (features.check).
SEMANTIC_CHECKS: tuple[Callable[[Site, Add], None], ...] = (
    _name_is_the_directory,
    _kubernetes_supported,
    _distro_built,
    _requirements,
    _single_replicas,
    _galera_replicas,
    _rabbitmq_replicas,
    _mariadb_backup,
    _raft_replicas,
    _public_hosts,
    _rbd_secret_uuids,
    _network_policy_nodes,
    _libvirt_secrets,
    _secret_store,
    _gitops_repository,
    _flux_ssh_key,
    _flux_names,
)


def _semantic_checks(site: Site, where: Any) -> list[Problem]:
    problems: list[Problem] = []

    def add(path: tuple[str, ...], code: str, msg: str, is_key: bool = False) -> None:
        display, line, col = where(path, is_key, in_site=code == "KKC113")
        problems.append(Problem(display, line, col, code, f"{schema.dotted(path)}: {msg}"))

    for check in SEMANTIC_CHECKS:
        check(site, add)
    return problems
