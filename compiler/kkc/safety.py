"""Day-two safety: what a change does to the objects already in the cluster.

The committed output of a site (deploy/<site>/ at a revision, built with kustomize as the
controller builds it) is what the controller applied; the output rendered now is what it
will apply next. Two kinds of change are caught by comparing the two, before anything is
written or merged:

- **immutable fields** (KKC156): a change the API server refuses to make in place, so the
  sync fails and, under Flux, blocks every later stage: a PersistentVolumeClaim's spec other
  than a storage increase; a StatefulSet's selector, serviceName, volumeClaimTemplates or
  podManagementPolicy (a storage class change of a claim template gets its own way out);
  the storage class of a mariadb-operator MariaDB's or a RabbitmqCluster's volumes; a
  Deployment's, DaemonSet's or ReplicaSet's selector; a Service's clusterIP, or a change of
  its type to ExternalName. Jobs are exempt: kkc has the
  controller replace every changed Job (:data:`kkc.jobs.JOB_REPLACE`).
- **destructive changes**: an ExternalSecret with ``creationPolicy: Owner`` removed (its
  Secret is deleted with it by the controller's prune, KKC157), a switch of the secret
  back end of a built site (KKC158), and a switch of its MariaDB or RabbitMQ provider
  (KKC159: the new MariaDB starts on new, empty volumes; the new RabbitMQ with no queues).
- **the RabbitMQ ladder** (KKC195): a RabbitmqCluster's image that moves RabbitMQ more than
  kolla-ansible's ladder allows, or back.

Each finding names the object, the field and the way out, and is located at the site
definition key that caused it where one is known, else at the site's deploy file.
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from . import generate, gitrepo, kustomize, upgradepath, writer
from .errors import WARNING, EnvironmentProblem, Problem
from .model import Site, rabbitmq_operator
from .yamlio import load_stream

IMMUTABLE = "KKC156"
SECRET_REMOVED = "KKC157"
BACKEND_SWITCH = "KKC158"
PROVIDER_SWITCH = "KKC159"
DESTRUCTIVE = (SECRET_REMOVED, BACKEND_SWITCH, PROVIDER_SWITCH)
MIGRATION_DOCS = "docs/backup-restore.md#moving-a-built-site-from-kolla-to-mariadb-operator"
RABBITMQ_MIGRATION_DOCS = "docs/bases.md#moving-a-built-site-to-rabbitmq-operator"
RELEASE_REFUSED = (upgradepath.PATH_REFUSED, upgradepath.RABBITMQ_REFUSED)
CODES = (IMMUTABLE, *DESTRUCTIVE, *RELEASE_REFUSED)
DOCS = "docs/review.md#day-two-safety"

# the kinds whose changes are checked (others are never refused by these rules)
KINDS = frozenset(
    {
        "PersistentVolumeClaim",
        "StatefulSet",
        "Deployment",
        "DaemonSet",
        "ReplicaSet",
        "Service",
        "ExternalSecret",
        "MariaDB",
        "RabbitmqCluster",
    }
)
_WORKLOAD_FIELDS = {
    "StatefulSet": ("selector", "serviceName", "volumeClaimTemplates", "podManagementPolicy"),
    "Deployment": ("selector",),
    "DaemonSet": ("selector",),
    "ReplicaSet": ("selector",),
}
# The site definition keys that set an object's immutable fields: (kind, name) -> (field
# path prefix, dotted paths), the first prefix that a changed field starts with chooses the
# paths, and the first of those that a layer sets locates the finding.
_SOURCES: dict[tuple[str, str], tuple[tuple[str, tuple[str, ...]], ...]] = {
    ("StatefulSet", "mariadb"): (
        ("spec.volumeClaimTemplates", ("services.mariadb.server.storage",)),
    ),
    ("StatefulSet", "rabbitmq"): (
        ("spec.volumeClaimTemplates", ("services.rabbitmq.server.storage",)),
    ),
    ("StatefulSet", "ovn-nb-db"): (
        ("spec.volumeClaimTemplates", ("services.neutron.ovnNbDb.storage",)),
    ),
    ("StatefulSet", "ovn-sb-db"): (
        ("spec.volumeClaimTemplates", ("services.neutron.ovnSbDb.storage",)),
    ),
    ("MariaDB", "mariadb"): (("spec.storage", ("services.mariadb.server.storage",)),),
    ("RabbitmqCluster", "rabbitmq"): (("spec.persistence", ("services.rabbitmq.server.storage",)),),
    ("PersistentVolumeClaim", "glance-images"): (
        ("spec.accessModes", ("services.glance.api.replicas", "overlays")),
        ("spec", ("services.glance.storage",)),
    ),
}
_ABSENT = object()
_UNITS = {
    "": 1,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "P": 10**15,
    "E": 10**18,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
}
_QUANTITY = re.compile(r"^([0-9]+(?:\.[0-9]+)?)([kMGTPE]i?|)$")

Identity = tuple[str, str, str, str]  # API group, kind, namespace, name


def quantity(value: Any) -> float | None:
    """A Kubernetes quantity (``10Gi``, ``500M``, ``1024``) in bytes; None if not one."""
    m = _QUANTITY.match(str(value))
    return float(m.group(1)) * _UNITS[m.group(2)] if m else None


def _identity(obj: dict[str, Any]) -> Identity:
    meta = obj.get("metadata") or {}
    group = str(obj.get("apiVersion", "")).rpartition("/")[0]
    return group, str(obj.get("kind")), str(meta.get("namespace") or ""), str(meta.get("name"))


def _label(i: Identity) -> str:
    return f"{i[1]}/{i[2] + '/' if i[2] else ''}{i[3]}"


def _index(objects: Iterable[Any]) -> dict[Identity, dict[str, Any]]:
    return {_identity(o): o for o in objects if isinstance(o, dict) and o.get("kind") in KINDS}


def _named(items: list[Any]) -> dict[str, Any] | None:
    """A list of mappings each with a distinct name (containers, claim templates), by name."""
    names = [((i.get("metadata") or i) if isinstance(i, dict) else {}).get("name") for i in items]
    if not items or None in names or len(set(names)) != len(names):
        return None
    return dict(zip(names, items, strict=True))


def leaves(old: Any, new: Any, path: str) -> list[tuple[str, Any, Any]]:
    """Every (field path, old, new) where ``old`` and ``new`` differ, to the leaves; a list
    of named mappings is compared by name (``volumeClaimTemplates[data]``)."""
    if old == new:
        return []
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for k in sorted(set(old) | set(new)):
            out += leaves(old.get(k, _ABSENT), new.get(k, _ABSENT), f"{path}.{k}")
        return out
    if isinstance(old, list) and isinstance(new, list):
        a, b = _named(old), _named(new)
        if a is not None and b is not None:
            out = []
            for k in sorted(set(a) | set(b)):
                out += leaves(a.get(k, _ABSENT), b.get(k, _ABSENT), f"{path}[{k}]")
            return out
    return [(path, old, new)]


def _show(value: Any) -> str:
    if value is _ABSENT:
        return "(unset)"
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return text if len(text) <= 60 else text[:57] + "..."


def _changes(found: list[tuple[str, Any, Any]]) -> str:
    shown = [f"{p} {_show(a)} -> {_show(b)}" for p, a, b in found[:3]]
    more = f" (and {len(found) - 3} more)" if len(found) > 3 else ""
    return "; ".join(shown) + more


def _pvc(old: dict[str, Any], new: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """The refused changes of a claim's spec: all but a storage increase."""
    found = []
    for path, a, b in leaves(old.get("spec") or {}, new.get("spec") or {}, "spec"):
        if path == "spec.resources.requests.storage":
            qa, qb = quantity(a), quantity(b)
            if qa is not None and qb is not None and qb > qa:
                continue
        found.append((path, a, b))
    return found


def _service(old: dict[str, Any], new: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    a, b = old.get("spec") or {}, new.get("spec") or {}
    found = []
    for key in ("clusterIP", "clusterIPs"):
        found += leaves(a.get(key, _ABSENT), b.get(key, _ABSENT), f"spec.{key}")
    if b.get("type") == "ExternalName" and a.get("type") != "ExternalName":
        found.append(("spec.type", a.get("type", "ClusterIP"), "ExternalName"))
    return found


def _workload(kind: str, old: dict[str, Any], new: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    a, b = old.get("spec") or {}, new.get("spec") or {}
    found = []
    for key in _WORKLOAD_FIELDS[kind]:
        found += leaves(a.get(key, _ABSENT), b.get(key, _ABSENT), f"spec.{key}")
    return found


# The storage class of an operator's volumes: the operator cannot move a claim to another
# class (a claim's storageClassName is immutable), so it refuses the change or never makes it.
_OPERATOR_STORAGE_CLASS = {
    "MariaDB": "spec.storage.storageClassName",
    "RabbitmqCluster": "spec.persistence.storageClassName",
}


def _storage_class(
    kind: str, old: dict[str, Any], new: dict[str, Any]
) -> list[tuple[str, Any, Any]]:
    """A change of the storage class of an operator-managed cluster's volumes."""
    path = _OPERATOR_STORAGE_CLASS[kind]
    a: Any = old
    b: Any = new
    for key in path.split("."):
        a = a.get(key, _ABSENT) if isinstance(a, dict) else _ABSENT
        b = b.get(key, _ABSENT) if isinstance(b, dict) else _ABSENT
    return [] if a == b else [(path, a, b)]


def _storage_class_way_out(i: Identity, fields: list[str]) -> str | None:
    """The way out of a storage class change (a StatefulSet's claim templates, an
    operator's storage): the data moves only by a copy onto new claims."""
    if not any(f.endswith(".storageClassName") for f in fields):
        return None
    kind, name = i[1], i[3]
    if kind == "MariaDB":
        move = (
            "take a backup, and restore it into the MariaDB on new claims of the new class "
            "(docs/backup-restore.md#restoring-a-backup-into-the-site)"
        )
    elif kind == "RabbitmqCluster":
        move = (
            f"stop the OpenStack services, and before the sync delete RabbitmqCluster {name} "
            f"and its claims (persistence-{name}-server-<ordinal>), so that the operator builds "
            "the cluster anew on the new class (queued messages are lost)"
        )
    else:
        move = (
            f"dump the data, delete StatefulSet {name} and its claims before the sync, and "
            "restore the dump once the new claims exist"
        )
    return (
        "a bound claim never changes its storage class, so the data does not move with it: "
        f"keep the old storage class, or {move}"
    )


def _way_out(i: Identity, fields: list[str]) -> str:
    kind, ns, name = i[1], i[2] or "default", i[3]
    resource = kind.lower()
    storage_class = _storage_class_way_out(i, fields)
    if storage_class:
        return storage_class
    if kind == "PersistentVolumeClaim":
        return (
            "a claim's spec cannot change except for a larger spec.resources.requests.storage "
            "(a storage expansion, where the StorageClass allows it); keep the old value, or "
            "give the claim a new name and copy the data over, or delete the claim (its data "
            "is lost) before the sync"
        )
    templates = sorted(
        {m.group(1) for f in fields if (m := re.match(r"spec\.volumeClaimTemplates\[([^]]+)\]", f))}
    )
    if kind == "StatefulSet" and any(f.startswith("spec.volumeClaimTemplates") for f in fields):
        claim = f"{templates[0] if templates else '<template>'}-{name}-<ordinal>"
        return (
            f"keep the old value, or before the sync run `kubectl -n {ns} delete statefulset "
            f"{name} --cascade=orphan` (the pods and their claims stay) and let the controller "
            "re-create it; the existing claims keep their old spec: for a larger size expand "
            f"each (`{claim}`) with `kubectl -n {ns} patch pvc`, where the StorageClass allows "
            "volume expansion"
        )
    if kind == "Service":
        return (
            f"keep the old value, or before the sync run `kubectl -n {ns} delete service {name}` "
            "and let the controller re-create it (clients that resolve it by DNS follow)"
        )
    return (
        f"keep the old value, give the {kind} a new name, or before the sync run `kubectl -n "
        f"{ns} delete {resource} {name} --cascade=orphan` and let the controller re-create it"
    )


def _origin(site: Site | None, paths: tuple[str, ...], fallback: str) -> tuple[str, int, int]:
    """Where the first of ``paths`` that a layer of ``site`` sets is set; else ``fallback``."""
    for dotted in paths if site is not None else ():
        for o in site.explain_at(tuple(dotted.split(".")))[1]:  # type: ignore[union-attr]
            if o.line and not o.deleted:
                return o.path, o.line, o.col
    return fallback, 1, 1


def immutable(
    before: dict[Identity, dict[str, Any]],
    after: dict[Identity, dict[str, Any]],
    site: Site | None,
    where: str,
) -> list[Problem]:
    """KKC156 for each object whose immutable fields change between ``before`` and
    ``after`` (both :func:`_index` of built objects)."""
    out = []
    for i in sorted(set(before) & set(after)):
        old, new = before[i], after[i]
        kind = i[1]
        if kind == "PersistentVolumeClaim":
            found = _pvc(old, new)
        elif kind == "Service":
            found = _service(old, new)
        elif kind in _WORKLOAD_FIELDS:
            found = _workload(kind, old, new)
        elif kind in _OPERATOR_STORAGE_CLASS:
            found = _storage_class(kind, old, new)
        else:
            continue
        if not found:
            continue
        fields = [p for p, _a, _b in found]
        paths = next(
            (p for prefix, p in _SOURCES.get((kind, i[3]), ()) if fields[0].startswith(prefix)),
            (),
        )
        at = _origin(site, paths, where)
        out.append(
            Problem(
                *at,
                IMMUTABLE,
                f"{_label(i)}: {_changes(found)}: the API server refuses to change "
                f"{'this field' if len(fields) == 1 else 'these fields'} in place, so the "
                f"sync would fail; {_way_out(i, fields)} (see {DOCS})",
            )
        )
    return out


def _owned_secret(obj: dict[str, Any]) -> str | None:
    """The Secret an ExternalSecret owns (creationPolicy Owner, the default), or None."""
    target = (obj.get("spec") or {}).get("target") or {}
    if target.get("creationPolicy", "Owner") != "Owner":
        return None
    return str(target.get("name") or (obj.get("metadata") or {}).get("name"))


def destructive(
    before: dict[Identity, dict[str, Any]],
    after: dict[Identity, dict[str, Any]],
    site: Site | None,
    where: str,
) -> list[Problem]:
    """KKC158 when the site's secret back end changes (ExternalSecrets appear in or vanish
    from a built site), and KKC157 for each removed ExternalSecret that owns its Secret."""
    old = {i: o for i, o in before.items() if i[1] == "ExternalSecret"}
    new = {i: o for i, o in after.items() if i[1] == "ExternalSecret"}
    backend_at = _origin(site, ("secrets.backend", "secrets"), where)
    out = []
    if site is not None and before and bool(old) != bool(new):  # not a removed site
        was, now = ("external-secrets", "existing") if old else ("existing", "external-secrets")
        effect = (
            f"the {len(old)} ExternalSecrets go, and with them (creationPolicy Owner) the "
            "Secrets they created: every service loses its credentials on the next sync"
            if old
            else "the new ExternalSecrets take over the Secrets created by hand, and the "
            "store's values replace theirs on the next sync"
        )
        out.append(
            Problem(
                *backend_at,
                BACKEND_SWITCH,
                f"the secret back end of a built site changes from {was} to {now}: {effect}; "
                f"if that is meant, run `kkc build` with --allow-destructive (see {DOCS})",
            )
        )
    for i in sorted(set(old) - set(new)):
        secret = _owned_secret(old[i])
        if secret is None:
            continue
        at = backend_at if out else (where, 1, 1)
        ns = f"{i[2]}/" if i[2] else ""
        out.append(
            Problem(
                *at,
                SECRET_REMOVED,
                f"{_label(i)} is removed: it owns Secret/{ns}{secret} (creationPolicy Owner), "
                "which the controller's prune deletes with it, and every pod that reads it "
                "loses its credentials; keep it, or create the Secret by other means first "
                f"and pass --allow-destructive (see {DOCS})",
            )
        )
    return out


def mariadb_provider(objects: dict[Identity, dict[str, Any]]) -> str | None:
    """Who runs the MariaDB of a built output: ``mariadb-operator`` (a k8s.mariadb.com
    MariaDB), ``kolla`` (the StatefulSet mariadb of base/mariadb/), or None (no MariaDB)."""
    if any(i[0] == "k8s.mariadb.com" and i[1] == "MariaDB" for i in objects):
        return "mariadb-operator"
    if any(i[:2] == ("apps", "StatefulSet") and i[3] == "mariadb" for i in objects):
        return "kolla"
    return None


def provider_switch(
    before: dict[Identity, dict[str, Any]],
    after: dict[Identity, dict[str, Any]],
    site: Site | None,
    where: str,
) -> list[Problem]:
    """KKC159 when the MariaDB of a built site changes provider: the new server or cluster
    starts on new volumes (the operator's PVCs are not kolla's), with no database in it."""
    was, now = mariadb_provider(before), mariadb_provider(after)
    if site is None or was is None or now is None or was == now:
        return []
    at = _origin(site, ("services.mariadb.provider", "overlays"), where)
    return [
        Problem(
            *at,
            PROVIDER_SWITCH,
            f"services.mariadb.provider of a built site changes from {was} to {now}: the "
            f"{now} MariaDB starts on new, empty volumes and the {was} one is pruned, so "
            "every OpenStack database is gone on the next sync; move the data with a dump "
            f"and restore ({MIGRATION_DOCS}), then run `kkc build` with --allow-destructive "
            f"(see {DOCS})",
        )
    ]


def rabbitmq_provider(objects: dict[Identity, dict[str, Any]]) -> str | None:
    """Who runs the RabbitMQ of a built output: ``rabbitmq-operator`` (a RabbitmqCluster),
    ``kolla`` (the StatefulSet rabbitmq of base/rabbitmq/), or None (no RabbitMQ)."""
    if any(i[0] == "rabbitmq.com" and i[1] == "RabbitmqCluster" for i in objects):
        return "rabbitmq-operator"
    if any(i[:2] == ("apps", "StatefulSet") and i[3] == "rabbitmq" for i in objects):
        return "kolla"
    return None


def rabbitmq_provider_switch(
    before: dict[Identity, dict[str, Any]],
    after: dict[Identity, dict[str, Any]],
    site: Site | None,
    where: str,
) -> list[Problem]:
    """KKC159 when the RabbitMQ of a built site changes provider: the new cluster starts
    with no queues, and both want the Service rabbitmq until the old one is pruned."""
    was, now = rabbitmq_provider(before), rabbitmq_provider(after)
    if site is None or was is None or now is None or was == now:
        return []
    at = _origin(site, ("services.rabbitmq.provider", "overlays"), where)
    return [
        Problem(
            *at,
            PROVIDER_SWITCH,
            f"services.rabbitmq.provider of a built site changes from {was} to {now}: the "
            f"{now} RabbitMQ starts with no queues and the {was} one is pruned, so every "
            "message still queued is lost and every service reconnects as another user; stop "
            f"the OpenStack services first ({RABBITMQ_MIGRATION_DOCS}), then run `kkc build` "
            f"with --allow-destructive (see {DOCS})",
        )
    ]


def rabbitmq_image(objects: dict[Identity, dict[str, Any]]) -> str | None:
    """The image of the ``rabbitmq`` container of StatefulSet ``rabbitmq`` (None: none)."""
    for i, obj in objects.items():
        if i[:2] == ("apps", "StatefulSet") and i[3] == "rabbitmq":
            spec = ((obj.get("spec") or {}).get("template") or {}).get("spec") or {}
            for c in spec.get("containers") or []:
                if c.get("name") == "rabbitmq":
                    return c.get("image")
    return None


def rabbitmq_version(image: str) -> str | None:
    """The RabbitMQ version (major.minor) a Kolla RabbitMQ image runs: ``.../rabbitmq:<tag>``
    the version of the release its tag names (``upgrades.yaml``), ``.../rabbitmq-X-Y:<tag>``
    X.Y (Kolla's extra images, which kolla-ansible's ``rabbitmq_version_suffix`` selects);
    None for any other image (its version cannot be known offline)."""
    name, _, tag = image.rsplit("/", 1)[-1].partition(":")
    extra = re.fullmatch(r"rabbitmq-(\d+)-(\d+)", name)
    if extra:
        return f"{extra.group(1)}.{extra.group(2)}"
    if name == "rabbitmq":
        return upgradepath.facts().rabbitmq.get(tag.split("-", 1)[0])
    return None


def rabbitmq_jump(
    before: dict[Identity, dict[str, Any]],
    after: dict[Identity, dict[str, Any]],
    site: Site | None,
    where: str,
) -> list[Problem]:
    """KKC195 when the RabbitMQ image the output runs moves off kolla-ansible's ladder
    because a site patch pins it (or stopped pinning it). Without a pin the version
    follows the release and the path checks of the release change say it
    (:func:`release_change`; :func:`without_repeats` drops this finding when that one
    refuses); with one, only the images tell."""
    old, new = rabbitmq_image(before), rabbitmq_image(after)
    if site is None or old is None or new is None or old == new:
        return []
    was, now = rabbitmq_version(old), rabbitmq_version(new)
    why = upgradepath.ladder_problem(was, now) if was and now else None
    if why is None:
        return []
    pin = next(
        (
            (p.display, *p.where)
            for p in site.patches
            if p.target.get("kind") == "StatefulSet"
            and re.fullmatch(p.target.get("name", ".*"), "rabbitmq")
        ),
        None,
    )
    at = pin or _origin(site, ("openstack.release",), where)
    return [
        Problem(
            *at,
            upgradepath.RABBITMQ_REFUSED,
            f"StatefulSet/rabbitmq {why} (image {old} -> {new})",
        )
    ]


def rabbitmq_image_change(
    before: dict[Identity, dict[str, Any]],
    after: dict[Identity, dict[str, Any]],
    site: Site | None,
    where: str,
) -> list[Problem]:
    """KKC195 when a RabbitmqCluster's image moves RabbitMQ outside the ladder kolla-ansible
    allows (one minor version at a time, or a listed jump; no downgrade): the operator rolls
    the members onto the new image, and a node refuses data of a version it cannot upgrade."""
    out = []
    for i in sorted(set(before) & set(after)):
        if i[:2] != ("rabbitmq.com", "RabbitmqCluster"):
            continue
        images = [str((o.get("spec") or {}).get("image", "")) for o in (before[i], after[i])]
        old, new = (upgradepath.rabbitmq_image_version(image) for image in images)
        why = upgradepath.ladder_problem(old, new) if old and new else None
        if why is None:
            continue
        at = _origin(site, ("services.rabbitmq.image",), where)
        out.append(
            Problem(
                *at,
                upgradepath.RABBITMQ_REFUSED,
                f"{_label(i)}: spec.image {images[0]} -> {images[1]} {why} (see {DOCS})",
            )
        )
    return out


def compare(
    before: str | list[Any], after: str | list[Any], site: Site | None, where: str
) -> list[Problem]:
    """Every day-two finding between two `kustomize build` outputs (text or objects)."""
    old = _index(load_stream(before) if isinstance(before, str) else before)
    new = _index(load_stream(after) if isinstance(after, str) else after)
    return (
        immutable(old, new, site, where)
        + destructive(old, new, site, where)
        + provider_switch(old, new, site, where)
        + rabbitmq_provider_switch(old, new, site, where)
        + rabbitmq_image_change(old, new, site, where)
        + rabbitmq_jump(old, new, site, where)
    )


def relevant_change(committed: dict[str, str], rendered: dict[str, str]) -> bool:
    """Whether any object of a checked kind differs between two object digest maps
    (``.kkc-files`` ``objects``): only then is the committed output built to compare."""
    kinds = {k for k in set(committed) | set(rendered) if k.split("/", 1)[0] in KINDS}
    return any(committed.get(k) != rendered.get(k) for k in kinds)


def committed_outputs(
    git_repo: Any, commit: Any, top_dir: Path, names: list[str], against: str
) -> dict[str, str]:
    """`kustomize build` of each site's deploy/<name>/ at ``commit`` (with the bases and
    overlays of that commit), by name; a site without committed output is left out."""
    deploy = top_dir / "deploy"
    out: dict[str, str] = {}
    if not names:
        return out
    with tempfile.TemporaryDirectory(prefix="kkc-committed-") as tmp:
        wanted = [deploy / n for n in names] + [top_dir / "base", top_dir / "overlays"]
        found = set(gitrepo.materialise(git_repo, commit, wanted, Path(tmp)))
        top = Path(git_repo.working_tree_dir or top_dir).resolve()
        for name in names:
            site_dir = deploy / name
            if site_dir in found:
                staged = Path(tmp) / site_dir.resolve().relative_to(top)
                where = f"{against}:deploy/{name}/kustomization.yaml"
                out[name] = kustomize.build(staged, where)
    return out


def check_against(
    root: Path,
    rendered: list[tuple[Site, list[Any] | str, dict[str, str]]],
    against: str = "HEAD",
) -> dict[str, list[Problem]]:
    """The day-two findings of each rendered site (site, its built objects, its object
    digests) against its output committed in the site repository at ``against``. Outside
    a git repository, or with nothing committed, there is nothing to compare with."""
    try:
        git_repo = gitrepo.open_repo(root)
    except EnvironmentProblem:
        return {}
    commit = gitrepo.resolve(git_repo, against)
    if commit is None:
        return {}
    top = Path(git_repo.working_tree_dir or root).resolve()
    deploy = (root / "deploy").resolve().relative_to(top).as_posix()
    changed = []
    found: dict[str, list[Problem]] = {}
    for site, _objects, digests in rendered:
        manifest = gitrepo.file_at(commit, f"{deploy}/{site.name}/{writer.MANIFEST}")
        if manifest is not None and relevant_change(writer.parse_objects(manifest), digests):
            changed.append(site.name)
        found[site.name] = committed_release_change(commit, deploy, site)
    before = committed_outputs(git_repo, commit, root, changed, against) if changed else {}
    for site, objects, _digests in rendered:
        if site.name in before:
            found[site.name] = without_repeats(
                found.get(site.name, []),
                compare(before[site.name], objects, site, display(site.name)),
            )
    return {name: problems for name, problems in found.items() if problems}


def without_repeats(release: list[Problem], found: list[Problem]) -> list[Problem]:
    """The findings of a release change (:func:`release_change`) and of the outputs'
    comparison (:func:`compare`) together, without the comparison's RabbitMQ finding when
    the release change is refused already (the same jump, or a path that is refused)."""
    if release:
        found = [p for p in found if p.code != upgradepath.RABBITMQ_REFUSED]
    return release + found


def committed_release_change(commit: Any, deploy: str, site: Site) -> list[Problem]:
    """`release_change` against the release named in the site's committed README
    (``deploy``: the deploy/ directory relative to the repository's top)."""
    readme = gitrepo.file_at(commit, f"{deploy}/{site.name}/README.md")
    if readme is None:
        return []
    return release_change(site, generate.readme_release(readme.decode()))


def release_change(site: Site, committed: str | None) -> list[Problem]:
    """The path checks of `kkc upgrade` (KKC190, KKC195) for a site whose release differs
    from the release of its committed output: a hand edit of openstack.release gets the
    same verdict as `kkc upgrade`."""
    current = site.get("openstack.release")
    if committed is None or committed == current:
        return []
    refused = upgradepath.refusal(committed, current, kolla_rabbitmq=not rabbitmq_operator(site))
    if refused is None:
        return []
    code, why = refused
    origin = site.origins[("openstack", "release")]
    message = f"the committed output is on {committed}: {why} (`kkc upgrade` checks each step)"
    return [Problem(origin.path, origin.line, origin.col, code, message)]


def display(name: str) -> str:
    """Where a finding that no site definition key explains is reported."""
    return f"deploy/{name}/kustomization.yaml"


def as_warnings(found: list[Problem]) -> list[Problem]:
    return [p if p.severity == WARNING else p.as_warning() for p in found]
