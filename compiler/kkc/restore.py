"""`kkc restore SITE --from BACKUP --plan`: the restore of a mariadb-operator backup into
the site as a reviewable procedure, written nowhere.

It prints the ``Restore`` resource (``k8s.mariadb.com/v1alpha1``, validated against its
CRD schema) that restores the Backup ``BACKUP`` of the site's output, and the ordered steps
around it, read from the site's rendered output: suspend the controller, stop the writers
(the APIs and workers of stage services, then Keystone), apply the Restore and wait for
it, re-run the database Jobs (they re-create the users a Galera backup leaves out), give
the site back to the controller (infra first), delete the Restore. The Restore is not part
of the site's output: it is a one-off action, which the controller would prune or apply
again. With provider kolla there is no Restore resource: the command refuses (KKC189) and
points at the documented steps (docs/backup-restore.md).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import gitops, pipeline, validate
from .errors import InputError, OutputInvalid, Problem, command_line_error, did_you_mean
from .loader import load_site
from .model import STAGES, Site, mariadb_operator
from .services import galera
from .yamlio import dump, load_stream

REFUSED = "KKC189"
DOCS = "docs/backup-restore.md#restoring-a-backup-into-the-site"
KOLLA_DOCS = "docs/backup-restore.md#restoring-with-provider-kolla"
STAGE_LABEL = "kkc.openstack.org/stage"
# RFC 3339, as the Restore's targetRecoveryTime takes it
_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


@dataclass
class Step:
    title: str
    why: str
    commands: list[str] = field(default_factory=list)
    objects: list[str] = field(default_factory=list)  # what the step acts on, Kind/name

    def as_json(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "why": self.why,
            "commands": self.commands,
            "objects": self.objects,
        }


@dataclass
class RestorePlan:
    site: str
    namespace: str
    engine: str
    backup: str
    restore: dict[str, Any]
    steps: list[Step]

    def as_json(self) -> dict[str, Any]:
        return {
            "site": self.site,
            "namespace": self.namespace,
            "engine": self.engine,
            "backup": self.backup,
            "restore": self.restore,
            "steps": [s.as_json() for s in self.steps],
        }


def _refuse_kolla(site: Site) -> InputError:
    path, line, col = _provider_origin(site)
    return InputError(
        Problem(
            path,
            line,
            col,
            REFUSED,
            "kkc restore --plan needs services.mariadb.provider: mariadb-operator (it plans a "
            "Restore of the operator's Backup); the kolla MariaDB has no Backup or Restore "
            f"resource: restore a mariadb-dump by hand as {KOLLA_DOCS} describes",
        )
    )


def _provider_origin(site: Site) -> tuple[str, int, int]:
    for o in site.explain_at(("services", "mariadb", "provider"))[1]:
        if o.line and not o.deleted:
            return o.path, o.line, o.col
    return f"sites/{site.name}/site.yaml", 1, 1


def restore_name(at: str | None) -> str:
    """``mariadb-restore``, or with a recovery time ``mariadb-restore-<its digits>``."""
    if not at:
        return "mariadb-restore"
    return "mariadb-restore-" + re.sub(r"[^0-9tz]", "", at.lower())[:40]


def restore_resource(
    site: Site, backup: str, at: str | None = None, database: str | None = None
) -> dict[str, Any]:
    """The Restore of Backup ``backup`` into the site's MariaDB: the newest backup at or
    before ``at`` (RFC 3339; the newest without), every database or ``database``. Its pods
    carry the backup pods' name label, which the network policy admits to MariaDB."""
    spec: dict[str, Any] = {
        "mariaDbRef": {"name": galera.NAME, "waitForIt": True},
        "backupRef": {"name": backup},
    }
    if at:
        spec["targetRecoveryTime"] = at
    if database:
        spec["database"] = database
    spec["podMetadata"] = {
        "labels": {**galera.BACKUP_POD_LABELS, "app.kubernetes.io/component": "restore"}
    }
    placement = site.get("placement", {}) or {}
    if placement.get("nodeSelector"):
        spec["nodeSelector"] = dict(sorted(placement["nodeSelector"].items()))
    if placement.get("tolerations"):
        spec["tolerations"] = placement["tolerations"]
    return {
        "apiVersion": galera.API,
        "kind": "Restore",
        "metadata": {"name": restore_name(at), "namespace": site.get("namespace")},
        "spec": spec,
    }


def _by_stage(objects: list[dict[str, Any]], stage: str, *kinds: str) -> list[dict[str, Any]]:
    return [
        o
        for o in objects
        if o.get("kind") in kinds
        and ((o.get("metadata") or {}).get("labels") or {}).get(STAGE_LABEL) == stage
    ]


def _names(objects: list[dict[str, Any]]) -> list[str]:
    return sorted(f"{o['kind']}/{o['metadata']['name']}" for o in objects)


def _controller_steps(site: Site, stages: list[str]) -> tuple[Step, Step]:
    """(suspend, resume) of the site's controller."""
    ns = gitops.namespace(site)
    if site.get("gitops.engine") == "flux":
        names = [gitops.flux_name(site, s) for s in stages]
        suspend = [f"flux -n {ns} suspend kustomization {' '.join(names)}"]
        resume = [f"flux -n {ns} resume kustomization {n}" for n in names]
    else:
        suspend = [f"argocd app set {site.name} --sync-policy none"]
        resume = [f"argocd app set {site.name} --sync-policy automated --self-heal"]
    return (
        Step(
            "Suspend the controller",
            "so that it neither scales the stopped workloads back nor prunes the Restore",
            suspend,
        ),
        Step(
            "Give the site back to the controller, stage infra first",
            "it re-creates the database Jobs (stage db) and, once they complete, scales "
            "Keystone and the services back to the replicas the site defines",
            resume,
        ),
    )


def _steps(site: Site, objects: list[dict[str, Any]], restore: dict[str, Any]) -> list[Step]:
    ns = site.get("namespace")
    present = {((o.get("metadata") or {}).get("labels") or {}).get(STAGE_LABEL) for o in objects}
    stages = [s for s in STAGES if s in present]
    suspend, resume = _controller_steps(site, stages)
    services = _by_stage(objects, "services", "Deployment", "StatefulSet")
    identity = _by_stage(objects, "identity", "Deployment")
    jobs = _by_stage(objects, "db", "Job")
    name = restore["metadata"]["name"]
    scale = "kubectl -n {ns} scale {kind} -l {label}={stage} --replicas=0"

    def stop(stage: str, workloads: list[dict[str, Any]]) -> list[str]:
        kinds = sorted({o["kind"].lower() for o in workloads})
        return [scale.format(ns=ns, kind=k, label=STAGE_LABEL, stage=stage) for k in kinds]

    return [
        suspend,
        Step(
            "Stop the APIs and workers (stage services)",
            "first, so that no request starts a write that the restore cuts off; the node "
            "agents (stage compute) have no database connection and keep running, and so "
            "do the instances; stage infra (MariaDB, RabbitMQ, memcached, OVN) stays up",
            stop("services", services),
            _names(services),
        ),
        Step(
            "Stop Keystone (stage identity)",
            "last of the writers: the services validate tokens until they stop",
            stop("identity", identity),
            _names(identity),
        ),
        Step(
            f"Restore Backup {restore['spec']['backupRef']['name']}",
            "the operator's Job reads the backup from the Backup's storage and applies it "
            "through the primary; Galera replicates it to the other members",
            [
                "kubectl apply -f restore.yaml   # the Restore below",
                f"kubectl -n {ns} wait restore/{name} --for=condition=Complete --timeout=1h",
            ],
            [f"Restore/{name}"],
        ),
        Step(
            "Re-run the database Jobs (stage db)",
            "a Galera backup leaves out the users and their grants: the db-init containers "
            "re-create them from the secret store, then the schema migrations run (a no-op "
            "for a backup of the same release)",
            [f"kubectl -n {ns} delete job -l {STAGE_LABEL}=db"],
            _names(jobs),
        ),
        resume,
        Step(
            f"Delete Restore/{name}",
            "once the site runs again: it is a one-off action, not part of the output",
            [f"kubectl -n {ns} delete restore {name}"],
        ),
    ]


def plan(
    root: Path,
    name: str,
    backup: str,
    *,
    at: str | None = None,
    database: str | None = None,
    crd_dir: str | None = None,
) -> RestorePlan:
    """The restore plan of Backup ``backup`` of site ``name``; writes nothing. Refused
    (exit 2, KKC189): provider kolla, a Backup the output does not have, a bad ``at``."""
    site = load_site(root, name)
    if not mariadb_operator(site):
        raise _refuse_kolla(site)
    if at is not None and not _TIME.match(at):
        raise command_line_error(
            REFUSED, f'--at "{at}" is not an RFC 3339 time (e.g. 2026-12-08T02:15:00Z)'
        )
    rendered = pipeline.render(root, site, crd_dir)
    objects = [o for o in load_stream(rendered.manifests) if isinstance(o, dict)]
    backups = sorted(o["metadata"]["name"] for o in objects if o.get("kind") == "Backup")
    if backup not in backups:
        have = ", ".join(backups) if backups else "none: services.mariadb.backup.enabled is false"
        raise command_line_error(
            REFUSED,
            f'--from "{backup}": the site\'s output has no Backup of that name (its Backups: '
            f"{have}){did_you_mean(backup, backups)}",
        )
    restore = restore_resource(site, backup, at, database)
    problems, _ = validate.validate_objects(
        [restore], site.get("kubernetes.version"), crd_dir, "kkc restore"
    )
    if problems:
        raise OutputInvalid(problems)
    return RestorePlan(
        site.name,
        site.get("namespace"),
        site.get("gitops.engine"),
        backup,
        restore,
        _steps(site, objects, restore),
    )


# ---- reports ------------------------------------------------------------------------------


def text_report(p: RestorePlan) -> str:
    out = [
        f"{p.site}: restore plan of Backup {p.backup} (namespace {p.namespace}); nothing is written"
    ]
    for n, step in enumerate(p.steps, 1):
        out += ["", f"{n}. {step.title}: {step.why}"]
        out += [f"   $ {c}" for c in step.commands]
        if step.objects:
            out.append(f"   ({', '.join(step.objects)})")
    out += ["", "restore.yaml:", *dump(p.restore).rstrip("\n").splitlines(), "", f"See {DOCS}."]
    return "\n".join(out) + "\n"


def markdown_report(p: RestorePlan) -> str:
    out = [f"## Restore {p.site} from Backup `{p.backup}`", "", "Nothing is written by kkc.", ""]
    for n, step in enumerate(p.steps, 1):
        out += [f"### {n}. {step.title}", "", step.why[0].upper() + step.why[1:] + ".", ""]
        if step.commands:
            out += ["```sh", *step.commands, "```", ""]
        if step.objects:
            out += [", ".join(f"`{o}`" for o in step.objects), ""]
    out += ["### restore.yaml", "", "```yaml", *dump(p.restore).rstrip("\n").splitlines(), "```"]
    out += ["", f"> See {DOCS}."]
    return "\n".join(out) + "\n"


def json_report(p: RestorePlan) -> str:
    return json.dumps(p.as_json(), indent=2, sort_keys=True) + "\n"


REPORTS = {"text": text_report, "markdown": markdown_report, "json": json_report}
