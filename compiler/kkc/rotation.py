"""Credential rotation as a reviewable change: ``secrets.rotation`` (kolla password name ->
rotation generation, which `kkc rotate` bumps) and what it does to a site's output.

For each password with a generation, the output carries the annotation
``kkc.openstack.org/rotation-<password>: "<generation>"``

- on every ExternalSecret that fetches it: a changed annotation makes External Secrets
  fetch the remote key again (stage infra, before the stages whose Jobs apply it);
- on the pod template of every Job that *applies* it (db-init's ``ALTER USER`` in
  ``<svc>-db-sync``, ks-register's user update in ``<svc>-ks-register``, keystone-manage
  bootstrap for the admin password): kkc has the controller replace a changed Job, so it
  runs again;
- on the pod template of every Deployment, StatefulSet and DaemonSet that reads it: they
  roll. The annotation holds the generation, never the value or a hash of it.

Some Jobs exist for a rotation only, rendered by the services while a generation is set:
the root password's and the RabbitMQ user's (they apply it, as above), the key sets' (a
:data:`~kkc.services.common.ROTATES` annotation names what they rotate), and the retire
Jobs of a two-phase service user (:data:`~kkc.services.common.RETIRES`, stage finish:
generation g of ``<svc>_keystone_password`` is a new user, the earlier ones are deleted
once every consumer has rolled; :func:`kkc.services.common.service_user`).

With External Secrets, the new generation also waits for the refresh (the controller does
not): the ExternalSecret's template adds the key ``kkc-rotation-<password>-<generation>``
to its Secret (:func:`marker`), and each container of those Jobs and workloads that
applies or reads the password reads that key into a variable, so the kubelet starts it
only once the refreshed Secret has it.

Who reads and who applies a password is found in the rendered objects, not in a list kept
by hand: each container's Secret env references, its Secret volumes (and, for the Kolla
secret directory, the keys its config.json copies), each key's kolla password and the keys
an ExternalSecret template reads. The pipeline builds the tree once without the pod-template
annotations to find them (as it does to route site patches), then renders it with them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from .errors import InputError, Problem, did_you_mean
from .kolla import CONFIG_DIR, SECRET_DIR
from .model import STAGES, Site
from .services import SecretSpec
from .services.common import KEY_SETS, PREVIOUS, RETIRES, ROTATES

ANNOTATION = "kkc.openstack.org/rotation-"
STAGE_LABEL = "kkc.openstack.org/stage"
DESCRIPTION = "kkc.openstack.org/description"
ROLLING = ("Deployment", "StatefulSet", "DaemonSet")
ACTIONS = ("refresh", "re-run", "roll", "next run", "no roll", "retire")
# The env variables through which a Job applies a credential where it lives.
APPLIES = {
    "DB_PASSWORD": "sets the password of the MariaDB user (ALTER USER)",
    "SERVICE_PASSWORD": "sets the password of the Keystone service user",
    "OS_BOOTSTRAP_PASSWORD": "keystone-manage bootstrap resets the admin user's password",
    "HEAT_DOMAIN_ADMIN_PASSWORD": "sets the password of the Heat domain admin",
    "NEW_ROOT_PASSWORD": "sets the MariaDB root password, signed in with the previous one",
    "RABBITMQ_PASSWORD": "rabbitmqctl change_password of the RabbitMQ user openstack",
}
# Reads that only count when a server initialises an empty data directory: rolling the
# (single) server would interrupt it and apply nothing.
BOOTSTRAP_ONLY = {
    ("StatefulSet", "mariadb", "database_password"): (
        "reads the root password only to initialise an empty data directory"
    ),
    ("StatefulSet", "rabbitmq", "rabbitmq_password"): (
        "default_user/default_pass create the user only in an empty RabbitMQ database"
    ),
}
_TEMPLATE_KEY = re.compile(r'\{\{[^}]*?(?:index \. "([^"]+)"|\.([\w-]+))[^}]*\}\}')


def generations(site: Site) -> dict[str, int]:
    """secrets.rotation: password name -> generation (empty when there is none)."""
    return dict(sorted((site.get("secrets.rotation") or {}).items()))


def key_sources(spec: SecretSpec) -> dict[str, set[str]]:
    """Key of the Secret -> the kolla passwords its value is made of (its own source, or
    the sources of the keys its template reads)."""
    own = {k.key: k.source for k in spec.keys if k.source}
    out: dict[str, set[str]] = {}
    for k in spec.keys:
        if k.source:
            out[k.key] = {k.source}
        elif k.template:
            refs = {a or b for a, b in _TEMPLATE_KEY.findall(k.template)}
            out[k.key] = {own[r] for r in refs if r in own}
    return out


def rotatable(secrets: list[SecretSpec]) -> dict[str, list[str]]:
    """Kolla password name -> the "Secret/key" entries holding it, for every password a
    site's Secrets are filled from (not those kkc's Jobs create in the cluster)."""
    out: dict[str, list[str]] = {}
    for spec in secrets:
        if spec.created_by:
            continue
        for k in spec.keys:
            # a rotated password's previous value is the operator's copy, not rotated
            if k.source and not k.source.endswith(PREVIOUS):
                out.setdefault(k.source, []).append(f"{spec.name}/{k.key}")
    return dict(sorted(out.items()))


def created_in_cluster(secrets: list[SecretSpec]) -> dict[str, str]:
    """Secret name -> what creates and rotates it, for the Secrets kkc's Jobs create."""
    return {s.name: s.created_by for s in secrets if s.created_by}


def unknown_name(name: str, secrets: list[SecretSpec]) -> str | None:
    """Why ``name`` cannot be rotated (None: it can): not a password of the site (with
    did-you-mean), or a Secret that a kkc Job creates and rotates itself."""
    created = created_in_cluster(secrets)
    if name in rotatable(secrets) or (name in KEY_SETS and name in created):
        return None
    dashed = name.replace("_", "-")
    words = set(dashed.split("-"))
    near = [n for n in created if n in dashed or words & (set(n.split("-")) - {"keystone", "keys"})]
    if near:
        how = f"; rotate its keys now as {near[0]}" if near[0] in KEY_SETS else ""
        return (
            f"{name}: the Secret {near[0]} is not a kolla password; it is created in the "
            f"cluster by {created[near[0]]}{how} (docs/secrets.md#keys-kkc-creates)"
        )
    hint = did_you_mean(name, rotatable(secrets))
    return f"{name}: not a password of this site{hint or ' (kkc secrets SITE lists them)'}"


def check_names(site: Site, secrets: list[SecretSpec]) -> None:
    """KKC154 for a secrets.rotation entry that names no password of the site."""
    problems = []
    for name in generations(site):
        why = unknown_name(name, secrets)
        if why:
            origin = site.origins.get(("secrets", "rotation", name))
            where = (origin.path, origin.line, origin.col) if origin else (site.name, 1, 1)
            problems.append(Problem(*where, "KKC154", f"secrets.rotation.{why}"))
    if problems:
        raise InputError(problems)


@dataclass(frozen=True)
class Read:
    """A container reading a key of a Secret (key None: every key), through ``env``
    (a variable name) or a volume (env empty)."""

    container: str
    secret: str
    key: str | None
    env: str = ""
    init: bool = False  # an init container


def _pod(obj: dict[str, Any]) -> dict[str, Any]:
    spec = obj.get("spec") or {}
    if obj.get("kind") == "CronJob":
        spec = (spec.get("jobTemplate") or {}).get("spec") or {}
    return (spec.get("template") or {}).get("spec") or {}


def _copied(container: dict, volumes: dict, configmaps: dict) -> list[str] | None:
    """The files the container's Kolla config.json copies from the secret directory
    (None: the container has no Kolla config)."""
    for mount in container.get("volumeMounts") or []:
        if mount.get("mountPath") == CONFIG_DIR:
            name = (volumes.get(mount.get("name"), {}).get("configMap") or {}).get("name")
            data = (configmaps.get(name) or {}).get("data") or {}
            if "config.json" in data:
                files = json.loads(data["config.json"]).get("config_files") or []
                prefix = f"{SECRET_DIR}/"
                return [f["source"][len(prefix) :] for f in files if f["source"].startswith(prefix)]
    return None


def reads(obj: dict[str, Any], configmaps: dict[str, dict]) -> Iterator[Read]:
    """Every Secret key the pod template of ``obj`` reads (``configmaps``: the output's, by
    name, for the Kolla config.json of each container)."""
    pod = _pod(obj)
    volumes = {v.get("name"): v for v in pod.get("volumes") or []}
    inits = pod.get("initContainers") or []
    for c in [*inits, *(pod.get("containers") or [])]:
        name, init = c.get("name", ""), c in inits
        for env in c.get("env") or []:
            ref = (env.get("valueFrom") or {}).get("secretKeyRef")
            if ref:
                yield Read(name, ref.get("name", ""), ref.get("key"), env.get("name", ""), init)
        for env in c.get("envFrom") or []:
            if env.get("secretRef"):
                yield Read(name, env["secretRef"].get("name", ""), None, init=init)
        copied = _copied(c, volumes, configmaps)
        for mount in c.get("volumeMounts") or []:
            secret = volumes.get(mount.get("name"), {}).get("secret")
            if not secret:
                continue
            items = {i["path"]: i["key"] for i in secret.get("items") or []}
            if mount.get("mountPath") == SECRET_DIR and copied is not None:
                keys: list[str | None] = [items.get(p, p) for p in copied]
            else:
                keys = list(items.values()) or [None]
            for key in keys:
                yield Read(name, secret.get("secretName", ""), key, init=init)


@dataclass
class Touch:
    """One object a rotation changes or names: ``action`` is one of :data:`ACTIONS`."""

    stage: str
    kind: str
    name: str
    action: str
    passwords: list[str]
    why: str
    # (container, init container?, password, Secret) of each container that reads or
    # applies a password rotated here: the ones that wait for the refreshed Secret
    readers: list[tuple[str, bool, str, str]] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.kind}/{self.name}"

    def as_json(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "kind": self.kind,
            "name": self.name,
            "action": self.action,
            "passwords": self.passwords,
            "why": self.why,
        }


@dataclass
class Rotation:
    """What rotating ``passwords`` does to a site, in the controller's order."""

    site: str
    backend: str
    generations: dict[str, int]  # the passwords rotated -> their (new) generation
    touches: list[Touch]
    manual: list[str] = field(default_factory=list)  # steps kkc cannot render
    notes: list[str] = field(default_factory=list)  # windows, costs
    # the credentials rotated in more than one phase -> their phases, in order
    phases: dict[str, list[str]] = field(default_factory=dict)

    def of(self, action: str) -> list[Touch]:
        return [t for t in self.touches if t.action == action]

    def as_json(self) -> dict[str, Any]:
        return {
            "site": self.site,
            "backend": self.backend,
            "generations": self.generations,
            "steps": [t.as_json() for t in self.touches],
            "manual": self.manual,
            "notes": self.notes,
            "phases": self.phases,
        }


def _stage(obj: dict[str, Any]) -> str:
    return str(((obj.get("metadata") or {}).get("labels") or {}).get(STAGE_LABEL) or "")


def _order(t: Touch) -> tuple[int, int, str]:
    stage = list(STAGES).index(t.stage) if t.stage in STAGES else len(STAGES)
    return stage, ACTIONS.index(t.action), t.label


def _object_touch(
    obj: dict[str, Any], found: list[tuple[Read, set[str]]], wanted: set[str]
) -> Touch | None:
    """What rotating ``wanted`` does to one workload or Job whose reads are ``found``."""
    kind, name = obj["kind"], obj["metadata"]["name"]
    hit = sorted({p for _r, ps in found for p in ps} & wanted)
    if not hit:
        return None
    if kind == "Job":
        applied = sorted((r.env, p) for r, ps in found for p in ps & wanted if r.env in APPLIES)
        if not applied:
            return None  # reads it but does not apply it: not re-run
        why = "; ".join(
            dict.fromkeys(
                f"{r.container}: {APPLIES[r.env]}"
                for r, ps in found
                if r.env in APPLIES and ps & wanted
            )
        )
        users = _readers(r for r in found if r[0].env in APPLIES)
        passwords = sorted({p for _e, p in applied})
        return Touch(_stage(obj), kind, name, "re-run", passwords, why, users(set(passwords)))
    if kind == "CronJob":
        return Touch(_stage(obj), kind, name, "next run", hit, "its next Job reads the new value")
    if kind not in ROLLING:
        return None
    rolled = [p for p in hit if (kind, name, p) not in BOOTSTRAP_ONLY]
    if not rolled:
        why = "; ".join(BOOTSTRAP_ONLY[(kind, name, p)] for p in hit)
        return Touch(_stage(obj), kind, name, "no roll", hit, why)
    secrets = sorted({r.secret for r, ps in found if ps & set(rolled)})
    why = f"reads {', '.join(secrets)}"
    return Touch(_stage(obj), kind, name, "roll", rolled, why, _readers(found)(set(rolled)))


def _readers(found: Iterable[tuple[Read, set[str]]]):
    """wanted -> the sorted (container, init, password, Secret) of the reads in ``found``
    (one Secret per container and password: the first it reads it from)."""
    pairs = list(found)

    def of(wanted: set[str]) -> list[tuple[str, bool, str, str]]:
        out: dict[tuple[str, bool, str], str] = {}
        for r, ps in pairs:
            for p in sorted(ps & wanted):
                out.setdefault((r.container, r.init, p), r.secret)
        return sorted((c, i, p, s) for (c, i, p), s in out.items())

    return of


def touches(
    site: Site, secrets: list[SecretSpec], objects: list[dict[str, Any]], wanted: set[str]
) -> list[Touch]:
    """The ExternalSecrets, Jobs and workloads of the built ``objects`` that rotating the
    passwords ``wanted`` refreshes, re-runs or rolls (or names: CronJobs, bootstrap-only
    reads), in the controller's order."""
    by_secret = {s.name: key_sources(s) for s in secrets if not s.created_by}
    configmaps = {o["metadata"]["name"]: o for o in objects if o.get("kind") == "ConfigMap"}
    found: list[Touch] = []
    for obj in objects:
        kind = obj.get("kind")
        if kind == "ExternalSecret":
            keys = by_secret.get(obj["metadata"]["name"], {})
            hit = sorted({p for ps in keys.values() for p in ps} & wanted)
            if hit:
                found.append(
                    Touch(_stage(obj), kind, obj["metadata"]["name"], "refresh", hit, "re-fetches")
                )
            continue
        notes = (obj.get("metadata") or {}).get("annotations") or {}
        for action, key in (("retire", RETIRES), ("re-run", ROTATES)):
            if kind == "Job" and notes.get(key) in wanted:  # a Job of the rotation itself
                why = notes.get(DESCRIPTION, "")
                name = obj["metadata"]["name"]
                found.append(Touch(_stage(obj), kind, name, action, [notes[key]], why))
                break
        else:
            _reads_touch(obj, wanted, by_secret, configmaps, found)
    return sorted(found, key=_order)


def _reads_touch(
    obj: dict[str, Any],
    wanted: set[str],
    by_secret: dict[str, dict[str, set[str]]],
    configmaps: dict[str, dict],
    found: list[Touch],
) -> None:
    """What rotating ``wanted`` does to ``obj`` through the Secret keys it reads."""
    kind = obj.get("kind")
    reads_of: list[tuple[Read, set[str]]] = []
    for r in reads(obj, configmaps) if kind in (*ROLLING, "Job", "CronJob") else ():
        keys = by_secret.get(r.secret, {})
        ps = set().union(*keys.values()) if r.key is None and keys else keys.get(r.key or "", set())
        reads_of.append((r, set(ps)))
    touch = _object_touch(obj, reads_of, wanted)
    if touch:
        found.append(touch)


def marker(password: str, generation: int) -> str:
    """The key of the Secret that says it holds ``password`` of ``generation``: the
    ExternalSecret's template adds it, so it exists once External Secrets has fetched the
    ExternalSecret of that generation (its value: the generation)."""
    return f"kkc-rotation-{password}-{generation}"


def env_name(password: str) -> str:
    return "KKC_ROTATION_" + re.sub(r"[^A-Za-z0-9]", "_", password).upper()


def _waits(site: Site, t: Touch) -> dict[str, list[dict[str, Any]]]:
    """ "initContainers"/"containers" -> the containers of ``t`` with one env variable per
    password they read, from the generation's marker key: the kubelet starts them only
    once the refreshed Secret has it (with External Secrets; else nothing to wait for)."""
    if site.get("secrets.backend") != "external-secrets":
        return {}
    gens = generations(site)
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for container, init, password, secret in t.readers:
        ref = {"name": secret, "key": marker(password, gens[password])}
        entry = out.setdefault("initContainers" if init else "containers", {}).setdefault(
            container, {"name": container, "env": []}
        )
        entry["env"].append({"name": env_name(password), "valueFrom": {"secretKeyRef": ref}})
    return {field: list(by_name.values()) for field, by_name in sorted(out.items())}


def patches(site: Site, found: list[Touch]) -> dict[str, list[dict[str, Any]]]:
    """Stage -> the strategic-merge patches that put the generations in the pod templates
    of the Jobs to re-run and the workloads to roll: an annotation per password, and in
    each container that reads it an env variable from the refreshed Secret's marker key."""
    gens = generations(site)
    out: dict[str, list[dict[str, Any]]] = {}
    for t in found:
        if t.action not in ("re-run", "roll"):
            continue
        annotations = {f"{ANNOTATION}{p}": str(gens[p]) for p in t.passwords}
        template: dict[str, Any] = {"metadata": {"annotations": annotations}}
        waits = _waits(site, t)
        if waits:
            template["spec"] = waits
        out.setdefault(t.stage, []).append(
            {
                "apiVersion": "batch/v1" if t.kind == "Job" else "apps/v1",
                "kind": t.kind,
                "metadata": {"name": t.name},
                "spec": {"template": template},
            }
        )
    return out


def external_secret_annotations(site: Site, spec: SecretSpec) -> dict[str, str]:
    """The rotation annotations of the ExternalSecret of ``spec``: one per rotated password
    it fetches."""
    gens = generations(site)
    fetched = {k.source for k in spec.keys if k.source}
    return {f"{ANNOTATION}{p}": str(g) for p, g in gens.items() if p in fetched}


def external_secret_markers(site: Site, spec: SecretSpec) -> dict[str, str]:
    """The marker keys (:func:`marker`) that the ExternalSecret of ``spec`` adds to its
    Secret through its template: one per rotated password it fetches."""
    gens = generations(site)
    fetched = {k.source for k in spec.keys if k.source}
    return {marker(p, g): str(g) for p, g in gens.items() if p in fetched}
