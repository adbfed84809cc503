"""The GitOps controller objects of a site: what `kkc bootstrap SITE` prints, applied once
with `kubectl apply -f -`; from then on the controller deploys deploy/<site>/ in order.

A function of the resolved site and its bring-up stages, like generate.py: it reads no
file. An AppProject that several sites name (gitops.project) admits them all; the loader
finds those sites before rendering (:attr:`kkc.model.Site.project_peers`).

- Argo CD: an AppProject that allows only the site's repository, the site's namespace and
  the one cluster-scoped kind of the output (Namespace), plus the repositories and
  namespaces of the other sites in that project; and one Application for the whole
  deploy/<site>/. The stages already carry their sync waves, and Argo CD starts wave n+1
  only when everything of wave n is healthy (a Job once it has completed), so one
  Application keeps the bring-up order.
- Flux: a GitRepository and one Kustomization per stage, each depending on the stage
  before it, with `wait: true`: a stage is applied once the previous one is ready. A stage
  with a custom resource whose readiness kstatus cannot see (mariadb-operator's MariaDB,
  which reports a Ready condition only; the RabbitmqCluster's AllReplicasReady and
  ClusterAvailable; the topology operator's Ready) gets `healthCheckExprs` for it;
  `healthChecks` would be ignored next to `wait: true`.
- Operators the output needs (mariadb-operator; RabbitMQ's cluster and messaging topology
  operators) are named in the stream's header with the release whose CRDs kkc validates
  against, and, for Argo CD, with the argocd-cm health checks of their resources
  (:func:`prerequisites`, :func:`argo_health_checks`).
- The fleet form (`kkc bootstrap --applicationset`): one ApplicationSet whose list generator
  has one element per Argo CD site, carrying that site's values, so that every Application
  it generates equals the site's own Application; plus the sites' AppProjects (each the
  one `kkc bootstrap SITE` prints).
"""

from __future__ import annotations

import copy
import re
from collections import Counter
from typing import Any

from .errors import WARNING, InputError, Problem
from .model import ProjectPeer, Site, locate, mariadb_operator, rabbitmq_operator
from .services import HEADER, galera, rabbitmq_cluster
from .yamlio import dump_all

BOOTSTRAP = "bootstrap.yaml"  # in deploy/<site>/, never listed in its kustomization.yaml
ENGINE_NAMESPACE = {"argocd": "argocd", "flux": "flux-system"}
IN_CLUSTER = "https://kubernetes.default.svc"
SITE_LABEL = "kkc.openstack.org/site"
ARGO_API = "argoproj.io/v1alpha1"
FLUX_SOURCE_API = "source.toolkit.fluxcd.io/v1"
FLUX_KUSTOMIZE_API = "kustomize.toolkit.fluxcd.io/v1"
# Why these Argo CD sync options:
# - ApplyOutOfSyncOnly: a sync applies only what changed. Jobs carry Force=true,Replace=true
#   (jobs.JOB_REPLACE), so applying an unchanged Job would delete and re-run it on every sync.
# - PruneLast: objects a change removes are deleted only after the new state is healthy.
# Not set: CreateNamespace (the output has its own Namespace, wave 0, with kkc's labels);
# ServerSideApply (no object comes near the 256 KiB last-applied annotation limit; the
# reconcile test checks that).
ARGO_SYNC_OPTIONS = ["ApplyOutOfSyncOnly=true", "PruneLast=true"]
# An ExternalSecret that is not yet synced, or a Secret that must exist before sync, fails
# a wave; retry instead of waiting for the next change.
ARGO_RETRY = {"limit": 5, "backoff": {"duration": "30s", "factor": 2, "maxDuration": "10m"}}
_SHA = re.compile(r"[0-9a-f]{40}")
APPSET_NAME = "openstack-sites"
# An ApplicationSet template is a typed Application, so a boolean (automated.prune) cannot
# come from a placeholder; the sync policy, the one per-site value that is not a string,
# comes in whole through templatePatch (a Go template, rendered as YAML; JSON is YAML).
APPSET_SYNC_PATCH = "spec:\n  syncPolicy: {{ toJson .syncPolicy }}\n"


# Flux-only settings an Argo CD site may inherit or set by mistake: why the Application
# has no place for them.
ARGO_IGNORES = {
    "secretRef": "Argo CD takes repository credentials from its own repository Secrets "
    "(label argocd.argoproj.io/secret-type: repository in its namespace), never from an "
    "Application",
    "interval": "Argo CD polls every repository at its own interval (timeout.reconciliation "
    "in argocd-cm)",
}


def ignored_settings(site: Site) -> list[Problem]:
    """Warnings for the Flux settings a site on Argo CD sets (not the compiler defaults):
    they change nothing, and a site file should not suggest otherwise."""
    if site.get("gitops.engine") != "argocd":
        return []
    out = []
    for key, why in ARGO_IGNORES.items():
        origin = site.origins.get(("gitops", key))
        if origin is None or origin.deleted or origin.layer == "compiler defaults":
            continue
        problem = Problem(
            origin.path,
            origin.line,
            origin.col,
            "KKC160",
            f"gitops.{key}: ignored with gitops.engine argocd: {why}",
            WARNING,
        )
        out.append(problem)
    return out


def output_path(site: Site, path: str | None = None) -> str:
    """Where the site's output lives in the repository the controller watches."""
    return path or site.get("gitops.path") or f"deploy/{site.name}"


def namespace(site: Site) -> str:
    return site.get("gitops.namespace") or ENGINE_NAMESPACE[site.get("gitops.engine")]


def stage_dependencies(stages: list[str]) -> dict[str, list[str]]:
    """Stage -> the stages it waits for. The bring-up order is a chain (infra, db, identity,
    register, services, compute, finish; empty stages left out): each stage needs everything before
    it, and waiting for the one just before it waits for all of them."""
    return {stage: stages[i - 1 : i] for i, stage in enumerate(stages)}


def flux_name(site: Site, stage: str) -> str:
    return f"{site.name}-{stage}"


def _metadata(site: Site, name: str) -> dict[str, Any]:
    return {"name": name, "namespace": namespace(site), "labels": {SITE_LABEL: site.name}}


def _argocd(site: Site, path: str) -> list[dict[str, Any]]:
    project = site.get("gitops.project") or site.name
    destination = {"server": IN_CLUSTER, "namespace": site.get("namespace")}
    sync_policy: dict[str, Any] = {}
    if site.get("gitops.automated"):
        sync_policy["automated"] = {
            "prune": bool(site.get("gitops.prune")),
            "selfHeal": bool(site.get("gitops.selfHeal")),
        }
    sync_policy["syncOptions"] = list(ARGO_SYNC_OPTIONS)
    sync_policy["retry"] = ARGO_RETRY
    return [
        {
            "apiVersion": ARGO_API,
            "kind": "AppProject",
            "metadata": _metadata(site, project),
            "spec": {
                "description": f"OpenStack site {site.name}, compiled by kkc",
                **_project_spec(site.get("gitops.repoURL"), site.get("namespace")),
            },
        },
        {
            "apiVersion": ARGO_API,
            "kind": "Application",
            "metadata": _metadata(site, site.name),
            "spec": {
                "project": project,
                "source": {
                    "repoURL": site.get("gitops.repoURL"),
                    "targetRevision": site.get("gitops.revision"),
                    "path": path,
                },
                "destination": destination,
                "syncPolicy": sync_policy,
            },
        },
    ]


# Flux: the MariaDB is ready when its Ready condition is True (kstatus alone, which `wait`
# uses, looks for Reconciling/Stalled conditions and would call it ready at once).
FLUX_MARIADB_HEALTH = {
    "apiVersion": galera.API,
    "kind": "MariaDB",
    "current": "has(status.conditions) && "
    "status.conditions.exists(e, e.type == 'Ready' && e.status == 'True')",
    "failed": "has(status.conditions) && "
    "status.conditions.exists(e, e.type == 'Ready' && e.status == 'False' && "
    "e.reason == 'Failed')",
}


def _argo_ready_health(degraded_reason: str | None) -> str:
    """An Argo CD health check (Lua) on a resource's Ready condition: Healthy once True,
    Progressing with its message until then, Degraded when its reason is
    ``degraded_reason`` (None: never Degraded)."""
    degraded = (
        f'      elseif c.reason == "{degraded_reason}" then\n        hs.status = "Degraded"\n'
        if degraded_reason
        else ""
    )
    return (
        'hs = {status = "Progressing", message = "waiting for the Ready condition"}\n'
        "if obj.status ~= nil and obj.status.conditions ~= nil then\n"
        "  for _, c in ipairs(obj.status.conditions) do\n"
        '    if c.type == "Ready" then\n'
        "      hs.message = c.message\n"
        '      if c.status == "True" then\n'
        '        hs.status = "Healthy"\n'
        f"{degraded}"
        "      end\n"
        "    end\n"
        "  end\n"
        "end\n"
        "return hs\n"
    )


# Argo CD: the same rule as a resource health check (argocd-cm). Argo CD finds health
# checks only there (not in an AppProject or Application); recent releases ship one for
# k8s.mariadb.com MariaDB, which this one pins: Healthy only once Ready is True.
ARGO_MARIADB_HEALTH_KEY = "resource.customizations.health.k8s.mariadb.com_MariaDB"
ARGO_MARIADB_HEALTH = _argo_ready_health("Failed")


# Flux: the RabbitmqCluster is ready when every member is ready and its Service has
# endpoints (AllReplicasReady and ClusterAvailable True); the topology operator's User, Vhost
# and Permission when their Ready condition is True. No `failed`: the operators report
# ReconcileSuccess or Ready False on transient errors too (a User before its cluster
# answers), and a failed health check would stop the stage until the next interval; a real
# failure runs into the stage's timeout.
_COND = "has(status.conditions) && status.conditions.exists(e, e.type == '{}' && e.status == '{}')"
FLUX_RABBITMQ_HEALTH = [
    {
        "apiVersion": rabbitmq_cluster.API,
        "kind": "RabbitmqCluster",
        "current": _COND.format("AllReplicasReady", "True")
        + " && "
        + _COND.format("ClusterAvailable", "True"),
    },
    *(
        {
            "apiVersion": rabbitmq_cluster.API,
            "kind": kind,
            "current": _COND.format("Ready", "True"),
        }
        for kind in ("User", "Vhost", "Permission")
    ),
]
# Argo CD: the same rules as resource health checks in argocd-cm (Degraded, which Argo CD
# re-evaluates, shows the cluster operator's reconcile error).
ARGO_RABBITMQ_HEALTH_KEY = "resource.customizations.health.rabbitmq.com_RabbitmqCluster"
ARGO_RABBITMQ_HEALTH = """hs = {status = "Progressing", message = "waiting for the cluster"}
local ready = {}
if obj.status ~= nil and obj.status.conditions ~= nil then
  for _, c in ipairs(obj.status.conditions) do
    ready[c.type] = c.status
    if c.type == "ReconcileSuccess" and c.status == "False" then
      return {status = "Degraded", message = c.message}
    end
  end
end
if ready["AllReplicasReady"] == "True" and ready["ClusterAvailable"] == "True" then
  hs.status = "Healthy"
  hs.message = "all replicas ready, cluster available"
end
return hs
"""
ARGO_TOPOLOGY_HEALTH_KEYS = tuple(
    f"resource.customizations.health.rabbitmq.com_{kind}"
    for kind in ("User", "Vhost", "Permission")
)
# The Ready condition of the topology operator's resources: Healthy once True, Progressing
# with the operator's message until then (False while the cluster does not answer yet)
ARGO_TOPOLOGY_HEALTH = _argo_ready_health(None)


def prerequisites(site: Site) -> list[str]:
    """The operators the site's output needs running in the cluster before its first
    sync, each with the release whose CRD schemas kkc validates its resources against."""
    out = []
    ns = site.get("namespace")
    if site.enabled("mariadb") and mariadb_operator(site):
        out.append(
            f"{galera.OPERATOR} {galera.OPERATOR_RELEASE} (services.mariadb.provider): CRDs "
            f"{galera.API} MariaDB and Backup, validated against {galera.OPERATOR}'s "
            f"{galera.OPERATOR_RELEASE} CRDs; it must watch namespace {ns}"
        )
    if site.enabled("rabbitmq") and rabbitmq_operator(site):
        rmq = rabbitmq_cluster
        out += [
            f"{rmq.OPERATOR} {rmq.OPERATOR_RELEASE} (services.rabbitmq.provider): CRD "
            f"{rmq.API} RabbitmqCluster, validated against {rmq.OPERATOR}'s "
            f"{rmq.OPERATOR_RELEASE} CRDs; it must watch namespace {ns}",
            f"{rmq.TOPOLOGY_OPERATOR} {rmq.TOPOLOGY_OPERATOR_RELEASE} (services.rabbitmq."
            f"provider): CRDs {rmq.API} User, Vhost and Permission, validated against "
            f"{rmq.TOPOLOGY_OPERATOR}'s {rmq.TOPOLOGY_OPERATOR_RELEASE} CRDs; in namespace "
            f"{site.get('services.rabbitmq.operatorNamespace')} (network-policy admits it)",
        ]
    return out


def argo_health_checks(site: Site) -> list[tuple[str, str]]:
    """(argocd-cm data key, Lua) of each health check the site's custom resources need."""
    out = []
    if site.enabled("mariadb") and mariadb_operator(site):
        out.append((ARGO_MARIADB_HEALTH_KEY, ARGO_MARIADB_HEALTH))
    if site.enabled("rabbitmq") and rabbitmq_operator(site):
        out.append((ARGO_RABBITMQ_HEALTH_KEY, ARGO_RABBITMQ_HEALTH))
        out += [(key, ARGO_TOPOLOGY_HEALTH) for key in ARGO_TOPOLOGY_HEALTH_KEYS]
    return out


def _prerequisite_lines(site: Site) -> list[str]:
    """The header comment of the bootstrap stream that names the prerequisites."""
    needs = prerequisites(site)
    if not needs:
        return []
    lines = ["Install first (kkc doctor lists the CRD versions kkc validates against):"]
    lines += [f"- {n}" for n in needs]
    if site.get("gitops.engine") == "argocd":
        lines += [
            "Argo CD: stage infra waits for the operators' resources to be ready with these",
            "health checks in argocd-cm (namespace " + namespace(site) + "), under data:",
        ]
        for key, lua in argo_health_checks(site):
            lines += [f"  {key}: |", *(f"    {line}" for line in lua.splitlines())]
    return lines


def _flux_ref(revision: str) -> dict[str, str]:
    if _SHA.fullmatch(revision):
        return {"commit": revision}
    if revision.startswith("refs/"):
        return {"name": revision}
    return {"branch": revision}


def _flux_health(site: Site) -> list[dict[str, Any]]:
    """The healthCheckExprs of stage infra: the operators' resources it waits for."""
    out = []
    if site.enabled("mariadb") and mariadb_operator(site):
        out.append(dict(FLUX_MARIADB_HEALTH))
    if site.enabled("rabbitmq") and rabbitmq_operator(site):
        out += [dict(e) for e in FLUX_RABBITMQ_HEALTH]
    return out


def _flux(site: Site, stages: list[str], path: str) -> list[dict[str, Any]]:
    interval = site.get("gitops.interval")
    out: list[dict[str, Any]] = [
        {
            "apiVersion": FLUX_SOURCE_API,
            "kind": "GitRepository",
            "metadata": _metadata(site, site.name),
            "spec": {
                "interval": interval,
                "url": site.get("gitops.repoURL"),
                "ref": _flux_ref(site.get("gitops.revision")),
            },
        }
    ]
    if site.get("gitops.secretRef"):
        out[0]["spec"]["secretRef"] = {"name": site.get("gitops.secretRef")}
    # Not set, on purpose: force (a stage-wide force would also re-create StatefulSets on an
    # immutable-field change; the Jobs carry kustomize.toolkit.fluxcd.io/force themselves),
    # targetNamespace (every object has its namespace already), serviceAccountName (the
    # kustomize-controller's own account, which may create the Namespace).
    for stage, needs in stage_dependencies(stages).items():
        spec: dict[str, Any] = {
            "interval": interval,
            "timeout": site.get("gitops.timeout"),
            "path": f"./{path}/stages/{stage}",
            "prune": bool(site.get("gitops.prune")),
            "wait": True,
            "sourceRef": {"kind": "GitRepository", "name": site.name},
        }
        if needs:
            spec["dependsOn"] = [{"name": flux_name(site, n)} for n in needs]
        exprs = _flux_health(site) if stage == "infra" else []
        if exprs:
            spec["healthCheckExprs"] = exprs
        out.append(
            {
                "apiVersion": FLUX_KUSTOMIZE_API,
                "kind": "Kustomization",
                "metadata": _metadata(site, flux_name(site, stage)),
                "spec": spec,
            }
        )
    return out


def project_key(data: dict[str, Any], name: str) -> tuple[str, str] | None:
    """(namespace, name) of the AppProject of a site's data (resolved, or merged from its
    layers only); None for a Flux site."""
    spec = data.get("gitops")
    if not isinstance(spec, dict) or spec.get("engine") != "argocd":
        return None
    return spec.get("namespace") or ENGINE_NAMESPACE["argocd"], spec.get("project") or name


def app_project(site: Site) -> dict[str, Any]:
    """The site's AppProject: shared by every site of the repository that names it, it
    admits them all, and is the same whichever of them is bootstrapped."""
    own = _argocd(site, output_path(site))[0]
    if not site.project_peers:
        return own
    names = sorted([site.name, *(p.name for p in site.project_peers)])
    return _shared_project([own, *map(_peer_project, site.project_peers)], names)


def _peer_project(peer: ProjectPeer) -> dict[str, Any]:
    """What the AppProject of another site in the project admits of that site."""
    return {"spec": _project_spec(peer.repo_url, peer.namespace)}


def _project_spec(repo_url: str, destination_namespace: str) -> dict[str, Any]:
    return {
        "sourceRepos": [repo_url],
        "destinations": [{"server": IN_CLUSTER, "namespace": destination_namespace}],
        "clusterResourceWhitelist": [{"group": "", "kind": "Namespace"}],
    }


def bootstrap_objects(site: Site, stages: list[str], path: str | None = None) -> list[dict]:
    """The objects to apply once for the site. ``stages`` are the stage names the output has,
    in order; ``path`` overrides where the output lives in the repository."""
    where = output_path(site, path)
    if site.get("gitops.engine") == "flux":
        return _flux(site, stages, where)
    _own_project, application = _argocd(site, where)
    return [app_project(site), application]


def setting_origin(site: Site, key: str) -> tuple[str, int, int]:
    """Where the site's gitops.<key> is set: the last layer that sets it (else the site
    file: the default)."""
    for layer in reversed(site.layers):
        if key in (layer.doc.get("gitops") or {}):
            return layer.display, *locate(layer.doc, ("gitops", key))
    return site.layers[-1].display, 1, 1


def _shared_project(projects: list[dict[str, Any]], sites: list[str]) -> dict[str, Any]:
    """One AppProject named by several sites' gitops.project: it admits what each allows."""
    out = projects[0]
    out["metadata"].pop("labels")  # no longer one site's
    out["spec"]["description"] = f"OpenStack sites {', '.join(sites)}, compiled by kkc"
    for key in ("sourceRepos", "destinations", "clusterResourceWhitelist"):
        merged = {repr(v): v for p in projects for v in p["spec"][key]}
        out["spec"][key] = [merged[k] for k in sorted(merged)]
    return out


def applicationset(sites: list[Site], name: str = APPSET_NAME) -> list[dict[str, Any]]:
    """The AppProjects of the Argo CD ``sites`` and one ApplicationSet named ``name`` that
    generates each site's Application. Its list generator carries the per-site values
    (repoURL and revision too, so the sites may differ in them); the ApplicationSet creates
    its Applications in its own namespace, so the sites must share gitops.namespace."""
    # the namespace most sites use (the first site's on a tie); each other one is a problem
    usual = Counter(namespace(s) for s in sites).most_common(1)[0][0]
    first = next(s for s in sites if namespace(s) == usual)
    problems = []
    for site in sites:
        if namespace(site) == usual:
            continue
        problems.append(
            Problem(
                *setting_origin(site, "namespace"),
                "KKC161",
                f'gitops.namespace: {site.name} puts its Argo CD objects in "{namespace(site)}" '
                f'but {first.name} in "{usual}"; one ApplicationSet creates all its '
                "Applications in its own namespace: give the sites one gitops.namespace, or "
                "name the sites of one namespace",
            )
        )
    if problems:
        raise InputError(problems)
    projects: dict[str, dict[str, Any]] = {}
    elements = []
    for site in sites:
        _own_project, app = _argocd(site, output_path(site))
        spec = app["spec"]
        if spec["project"] not in projects:  # shared: the same for each of its sites
            projects[spec["project"]] = app_project(site)
        elements.append(
            {
                "site": site.name,
                "project": spec["project"],
                "repoURL": spec["source"]["repoURL"],
                "revision": spec["source"]["targetRevision"],
                "path": spec["source"]["path"],
                "namespace": spec["destination"]["namespace"],
                "syncPolicy": copy.deepcopy(spec["syncPolicy"]),  # no YAML anchors
            }
        )
    appset = {
        "apiVersion": ARGO_API,
        "kind": "ApplicationSet",
        "metadata": {"name": name, "namespace": namespace(first)},
        "spec": {
            "goTemplate": True,
            "goTemplateOptions": ["missingkey=error"],
            "generators": [{"list": {"elements": elements}}],
            "template": {
                "metadata": {"name": "{{.site}}", "labels": {SITE_LABEL: "{{.site}}"}},
                "spec": {
                    "project": "{{.project}}",
                    "source": {
                        "repoURL": "{{.repoURL}}",
                        "targetRevision": "{{.revision}}",
                        "path": "{{.path}}",
                    },
                    "destination": {"server": IN_CLUSTER, "namespace": "{{.namespace}}"},
                },
            },
            "templatePatch": APPSET_SYNC_PATCH,
            # A site dropped from the list loses its Application, never its control plane
            # (as the per-site Application has no resources-finalizer).
            "syncPolicy": {"preserveResourcesOnDeletion": True},
        },
    }
    return [*(projects[name] for name in sorted(projects)), appset]


def applicationset_yaml(sites: list[Site], objects: list[dict]) -> bytes:
    head = (
        f"# Generated by kkc: one Argo CD ApplicationSet over the sites "
        f"{', '.join(s.name for s in sites)}\n"
        "# Apply: kkc bootstrap --applicationset | kubectl apply -f - (again when a site is "
        "added or removed)\n"
    )
    return (head + dump_all(objects)).encode()


def bootstrap_yaml(site: Site, objects: list[dict]) -> bytes:
    """A multi-document stream that `kubectl apply -f -` takes."""
    head = (
        f"# {HEADER.format(site=site.name)}\n"
        f"# Apply once: kubectl apply -f {BOOTSTRAP} (or: kkc bootstrap {site.name} | "
        "kubectl apply -f -)\n"
    )
    head += "".join(f"# {line}\n".replace("# \n", "#\n") for line in _prerequisite_lines(site))
    return (head + dump_all(objects)).encode()
