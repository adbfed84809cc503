"""The site model: a resolved site definition and where each of its values came from.

The bottom of kkc: it imports nothing of kkc but errors, yamlio and schema. Loading a site
(finding its layers, merging and checking them) is :mod:`kkc.loader`'s work; everything
above reads the :class:`Site` it returns.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import schema
from .errors import Problem

DNS_LABEL_RE = re.compile(rf"^{schema.DNS1123_LABEL}$")
# Names of keys and environment variables that hold secrets: ending in a secret word
# (adminPassword, DB_PASSWORD, ERLANG_COOKIE), with one as a word of a snake_case name
# (AWS_SECRET_ACCESS_KEY, MYSQL_PWD, GITHUB_TOKEN_VALUE) or ending in _KEY (SSH_PRIVATE_KEY,
# STRIPE_API_KEY); not names that say they hold something else (DB_PASSWORD_FILE,
# TOKEN_URL, SECRET_NAME, SSH_PUBLIC_KEY, the shell's PWD). camelCase site keys match by
# their ending only (secretUuid, secretRef and tokenExpiration hold no secret).
_NOT_SECRET = (
    r"(?:.*_)?(?:file|path|dir|url|uri|name|type|ttl|timeout|expiry|expiration|length"
    r"|(?:public|primary|foreign|partition|sort|routing|cache)_key)$"
)
SECRETISH_KEY = re.compile(
    rf"(?i)^(?!{_NOT_SECRET}|pwd$)(?:.*(?:pass(?:word|wd)?|secret|cookie|token|credentials?)$"
    r"|(?:.*_)?(?:secret|password|passwd|pwd|token)(?:_.*)?$|.*_key$)"
)
# Keys that match SECRETISH_KEY by name but hold no secret.
NOT_SECRET_PATHS = {("secrets",)}
# Subtrees whose keys are password names and whose values are not secrets: secrets.rotation
# (password name -> rotation generation, kkc.rotation).
NOT_SECRET_SUBTREES = {("secrets", "rotation")}
# Subtrees checked by other means: config overrides against the option catalogs (KKC134).
SECRET_CHECKED_ELSEWHERE = {("config",)}


# Bring-up stages, in order. Each is one Kustomize directory under deploy/<site>/stages/,
# one Argo CD sync wave and one Flux Kustomization (dependsOn the previous stage).
STAGES: dict[str, str] = {
    "infra": "namespace, Secrets, MariaDB, RabbitMQ, memcached, OVN databases",
    "db": "database creation and schema Jobs, Keystone keys and bootstrap",
    "identity": "the Keystone API",
    "register": "Keystone registration Jobs (service users, services, endpoints)",
    "services": "OpenStack APIs, schedulers, conductors and workers",
    "compute": "node agents: nova-compute, libvirt, Open vSwitch, OVN controller",
    "finish": "upgrade completion Jobs: database contract, online data migrations",
}

# Which services each service needs. Checked after the schema.
REQUIRES: dict[str, tuple[str, ...]] = {
    "keystone": ("mariadb", "memcached"),
    "glance": ("keystone", "mariadb", "rabbitmq"),
    "placement": ("keystone", "mariadb"),
    "nova": ("keystone", "mariadb", "rabbitmq", "placement", "glance", "neutron"),
    "neutron": ("keystone", "mariadb", "rabbitmq"),
    "cinder": ("keystone", "mariadb", "rabbitmq"),
    "heat": ("keystone", "mariadb", "rabbitmq"),
    "horizon": ("keystone", "memcached"),
}
# Replica limits for components kkc cannot yet cluster (MariaDB: with provider kolla only;
# see :func:`single_replica`).
SINGLE_REPLICA = {
    ("mariadb", "server"): "Galera clustering is not supported by kkc with provider kolla "
    "(services.mariadb.provider: mariadb-operator runs a Galera cluster)",
    ("rabbitmq", "server"): "RabbitMQ clustering is not supported by kkc with provider kolla "
    "(services.rabbitmq.provider: rabbitmq-operator runs a RabbitMQ cluster)",
}
# services.mariadb.provider: who runs MariaDB. kolla: one server of the Kolla mariadb-server
# image (a StatefulSet of base/mariadb/); mariadb-operator: a Galera cluster that
# mariadb-operator runs from a MariaDB resource kkc renders (kkc.services.infra).
MARIADB_PROVIDERS = ("kolla", "mariadb-operator")
MARIADB_OPERATOR = "mariadb-operator"
# The replicas of a MariaDB that the site does not size: one Kolla server, three Galera members.
MARIADB_DEFAULT_REPLICAS = {"kolla": 1, MARIADB_OPERATOR: 3}
# services.rabbitmq.provider: who runs RabbitMQ. kolla: one server of the Kolla rabbitmq image
# (base/rabbitmq/); rabbitmq-operator: a cluster that RabbitMQ's cluster operator runs from a
# RabbitmqCluster kkc renders, with a user and vhost per service (messaging topology
# operator; kkc.services.rabbitmq_cluster).
RABBITMQ_PROVIDERS = ("kolla", "rabbitmq-operator")
RABBITMQ_OPERATOR = "rabbitmq-operator"
RABBITMQ_DEFAULT_REPLICAS = {"kolla": 1, RABBITMQ_OPERATOR: 3}
# Services whose RBD user needs a libvirt secret on the computes.
RBD_USERS = ("nova", "cinder")
# Components that run 1 replica or a RAFT cluster of an odd size (KKC186).
RAFT_REPLICAS = {("neutron", "ovnNbDb"): (1, 3, 5), ("neutron", "ovnSbDb"): (1, 3, 5)}
# Services with a public endpoint; each needs endpoints.hosts.<name> when enabled.
PUBLIC_HOSTS: dict[str, tuple[str, ...]] = {
    "keystone": ("keystone",),
    "glance": ("glance",),
    "placement": ("placement",),
    "nova": ("nova", "novncproxy"),
    "neutron": ("neutron",),
    "cinder": ("cinder",),
    "heat": ("heat", "heat-cfn"),
    "horizon": ("horizon",),
}


def mariadb_operator(site: Site) -> bool:
    """Whether mariadb-operator runs the site's MariaDB (a Galera cluster)."""
    return site.get("services.mariadb.provider") == MARIADB_OPERATOR


def mariadb_replicas(site: Site) -> int:
    """services.mariadb.server.replicas, or its provider's default (1 kolla, 3 Galera)."""
    default = MARIADB_DEFAULT_REPLICAS.get(site.get("services.mariadb.provider"), 1)
    return site.get("services.mariadb.server.replicas", default)


def rabbitmq_operator(site: Site) -> bool:
    """Whether RabbitMQ's cluster operator runs the site's RabbitMQ (a cluster)."""
    return site.get("services.rabbitmq.provider") == RABBITMQ_OPERATOR


def rabbitmq_replicas(site: Site) -> int:
    """services.rabbitmq.server.replicas, or its provider's default (1 kolla, 3 cluster)."""
    default = RABBITMQ_DEFAULT_REPLICAS.get(site.get("services.rabbitmq.provider"), 1)
    return site.get("services.rabbitmq.server.replicas", default)


def single_replica(site: Site) -> dict[tuple[str, str], str]:
    """The components of :data:`SINGLE_REPLICA` that this site cannot cluster."""
    clustered = set()
    if mariadb_operator(site):
        clustered.add(("mariadb", "server"))
    if rabbitmq_operator(site):
        clustered.add(("rabbitmq", "server"))
    return {k: v for k, v in SINGLE_REPLICA.items() if k not in clustered}


@dataclass(frozen=True)
class Origin:
    """Where a resolved value was set."""

    path: str
    line: int
    col: int
    layer: str
    deleted: bool = False
    overridden: bool = False  # a config override that a later source replaced

    def __str__(self) -> str:
        if not self.line:  # no file set it (kkc.overrides: an option's catalog default)
            return f"not set: the {self.layer} of {self.path}"
        what = "deleted by" if self.deleted else "set by"
        if self.overridden:
            what = "overridden; was set by"
        return f"{self.path}:{self.line}:{self.col} ({what} layer {self.layer})"


@dataclass
class Layer:
    """One file of a site's definition, as loaded."""

    name: str  # "compiler defaults", "fleet defaults", "overlay ha", "site"
    display: str  # path shown in messages, relative to the repository root
    doc: Any  # ruamel CommentedMap
    # paths of plain-text secrets (KKC121): left out of validation and of the merge
    hidden: set[tuple[str, ...]] = field(default_factory=set)


@dataclass
class Site:
    """A resolved, validated site definition."""

    name: str
    root: Path
    data: dict[str, Any]
    origins: dict[tuple[str, ...], Origin] = field(default_factory=dict)
    layers: list[Layer] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)  # severity "warning"
    patches: list[Any] = field(default_factory=list)  # kkc.patches.SitePatch: patches/
    overrides: list[Source] = field(default_factory=list)  # config overrides, in order
    # the overlay component directories each stage lists, relative to the repository root
    # (the loader finds them: rendering reads no file)
    overlay_components: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # the other sites whose Application is in this site's AppProject (the loader finds them)
    project_peers: tuple[ProjectPeer, ...] = ()
    # the services' outputs before any override, kept by kkc.overrides.service_outputs so
    # that each command renders each service once. A loaded site's values do not change, so
    # the cache belongs to this Site object: not an argument, and not copied by
    # dataclasses.replace (a changed copy is rendered anew)
    rendered: list[Any] | None = field(default=None, init=False, repr=False, compare=False)
    # explains a dotted config path (config.<target>.<section>.<option>): set by the
    # loader to kkc.overrides.explain_dotted, which renders the services (the model cannot)
    explain_config: Callable[[str], tuple[Any, list[Origin]]] | None = field(
        default=None, repr=False, compare=False
    )

    def get(self, dotted: str, default: Any = None) -> Any:
        return self._at(tuple(dotted.split(".")), default)

    def _at(self, path: tuple[str, ...], default: Any = None) -> Any:
        node: Any = self.data
        for part in path:
            if not isinstance(node, dict) or part not in node:
                return default
            node = node[part]
        return node

    def enabled(self, service: str) -> bool:
        return bool(self.get(f"services.{service}.enabled", False))

    @property
    def digest(self) -> str:
        """sha256 of the resolved definition: changes exactly when the inputs' meaning does."""
        extra: dict[str, Any] = {}
        files = [s.meaning() for s in self.overrides if s.from_file]
        if files:  # the INI files under sites/<site>/config/
            extra["configFiles"] = files
        if self.patches:  # sites/<site>/patches/
            extra["patches"] = [[p.file, p.target, p.body] for p in self.patches]
        doc: Any = {"data": self.data, **extra} if extra else self.data
        blob = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
        return hashlib.sha256(blob).hexdigest()

    def paths(self) -> list[str]:
        """The dotted path of every value the layers set (``kkc show --explain``)."""
        return sorted(".".join(p) for p, o in self.origins.items() if not o.deleted)

    def explain(self, dotted: str) -> tuple[Any, list[Origin]]:
        """The value at ``dotted`` and every origin that contributed to it; for a config
        option (``config.<file>.<section>.<option>``) every override source, the winning
        one first."""
        if dotted.split(".")[0] == "config" and self.explain_config is not None:
            return self.explain_config(dotted)
        return self.explain_at(tuple(dotted.split(".")))

    def explain_at(self, path: tuple[str, ...]) -> tuple[Any, list[Origin]]:
        """The value at ``path`` and the origins of it and of what the layers set under it."""
        found = [o for p, o in self.origins.items() if p == path]
        found += sorted(
            (o for p, o in self.origins.items() if p[: len(path)] == path and p != path),
            key=lambda o: (o.path, o.line, o.col),
        )
        return self._at(path), found


@dataclass(frozen=True)
class ProjectPeer:
    """Another site whose Argo CD Application is in a site's AppProject: what that shared
    AppProject must admit of it."""

    name: str
    repo_url: str
    namespace: str


# Config override targets (kkc.overrides): "global", "<service>[/<component>]" or
# "<service>[/<component>]/<file>".
GLOBAL = "global"


def parse_target(target: str) -> tuple[str, str | None, str | None]:
    """(service, component, file) of an override target; file None: the main file. The
    last part names a file when it has a dot (``neutron/ml2_conf.ini``)."""
    parts = target.split("/")
    file = parts.pop() if len(parts) > 1 and "." in parts[-1] else None
    return parts[0], "/".join(parts[1:]) or None, file


@dataclass(frozen=True)
class SecretRef:
    """A YAML ``{secret: <name>}``: the value is the secret store entry ``name``."""

    name: str

    def template(self, key: str) -> str:
        """The drop-in value: the ``<svc>-secrets`` key ``key`` that holds the entry."""
        return f'{{{{ index . "{key}" }}}}'


@dataclass(frozen=True)
class Setting:
    """One override line (or YAML key): ``value`` is a tuple for a YAML list."""

    section: str
    option: str
    value: str | tuple[str, ...] | SecretRef
    origin: Origin


@dataclass(frozen=True)
class Source:
    """The overrides of one target from one place (a YAML ``config.<target>`` or a file)."""

    target: str  # "global", "<service>[/<component>]" or "<service>[/<component>]/<file>"
    settings: tuple[Setting, ...]
    origin: Origin  # the YAML key or the file
    from_file: bool
    layer: int = 0  # YAML: the index of the site layer that set these settings
    headers: tuple[tuple[int, str], ...] = ()  # a file's (line, section) of each [section]

    @property
    def rank(self) -> tuple[int, int, int]:
        """Precedence: YAML before files; YAML by layer (fleet defaults < overlays <
        site); then global < service < component."""
        service, component, _ = parse_target(self.target)
        level = 0 if service == GLOBAL else 2 if component else 1
        return (int(self.from_file), self.layer, level)

    def applies(self, service: str, component: str | None, file: str | None) -> bool:
        """Whether this source overrides ``file`` (None: the main file) of ``component``
        (None: a bring-up Job) of ``service``."""
        svc, comp, own = parse_target(self.target)
        if own != file:
            return False
        return svc == GLOBAL or (svc == service and comp in (None, component))

    def meaning(self) -> list[Any]:
        return [self.target, [[s.section, s.option, s.value] for s in self.settings]]

    @property
    def refs(self) -> list[Setting]:
        return [s for s in self.settings if isinstance(s.value, SecretRef)]


def sources_for(
    sources: list[Source], service: str, component: str | None, file: str | None
) -> list[Source]:
    """The sources that apply to ``file`` (None: the main file) of ``component`` of
    ``service``, lowest first."""
    return [s for s in sources if s.applies(service, component, file)]


def locate(doc: Any, path: tuple[Any, ...], is_key: bool = False) -> tuple[int, int]:
    """1-based (line, col) of ``path`` in a ruamel document; the deepest part found."""
    node = doc
    best = first_key(doc)
    for i, part in enumerate(path):
        last = i == len(path) - 1
        try:
            if isinstance(node, dict) and part in node:
                line, col = node.lc.key(part) if (is_key or not last) else node.lc.value(part)
                if not is_key and last and isinstance(node[part], dict | list) and node[part]:
                    line, col = node.lc.key(part)
            elif isinstance(node, list) and isinstance(part, int) and part < len(node):
                line, col = node.lc.item(part)
            else:
                return best
        except (AttributeError, KeyError, TypeError):
            return best
        best = (line + 1, col + 1)
        node = node[part]
    return best


def first_key(doc: Any) -> tuple[int, int]:
    """1-based (line, col) of the first key of a ruamel mapping: where a problem of the
    document as a whole (a required key it lacks) is shown; (1, 1) for anything else."""
    if isinstance(doc, dict) and doc:
        try:
            line, col = doc.lc.key(next(iter(doc)))
            return line + 1, col + 1
        except (AttributeError, KeyError, TypeError):
            pass
    return 1, 1
