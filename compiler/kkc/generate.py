"""The pure step: a resolved site -> the file tree of deploy/<site>/ ({relative path: bytes}).

Nothing here reads the site repository, touches the clock or loads another site: the same
site always gives the same bytes. What the output needs from the repository the loader found:
the overlay components of each stage (``Site.overlay_components``) and, for an Argo CD site
whose gitops.project other sites share, those sites (``Site.project_peers``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from . import __version__, gitops, rotation
from .features import ha
from .jobs import (
    JOB_REPLACE,
    db_sync_job,
    registration_job,
    retire_job,
)
from .model import Site
from .outputs import Outputs, compute
from .patches import SitePatch
from .releases import image_tag
from .services import HEADER, KEEP, STAGES, SecretSpec, ServiceOutput, Workload
from .services.common import control_plane_placement
from .yamlio import dump

KKC_LABEL = "kkc.openstack.org/site"
BASE_REL = "../../../.."  # deploy/<site>/stages/<stage>/ -> repository root
STAGE_LABEL = "kkc.openstack.org/stage"
WAVE = "argocd.argoproj.io/sync-wave"


def _yaml_file(site: Site, doc: Any) -> bytes:
    return (f"# {HEADER.format(site=site.name)}\n" + dump(doc)).encode()


def _pod_spec_path(kind: str) -> list[str]:
    if kind == "CronJob":
        return ["spec", "jobTemplate", "spec", "template", "spec"]
    return ["spec", "template", "spec"]


def _nest(path: list[str], leaf: dict[str, Any]) -> dict[str, Any]:
    for key in reversed(path):
        leaf = {key: leaf}
    return leaf


def _replicas(site: Site, svc: str, wl: Workload) -> int:
    return site.get(f"services.{svc}.{wl.component}.replicas", 1) if wl.scalable else 1


def _workload_patch(site: Site, svc: str, wl: Workload) -> dict[str, Any] | None:
    pod: dict[str, Any] = control_plane_placement(site) if wl.placed else {}
    replicas = _replicas(site, svc, wl)
    affinity = ha.anti_affinity(site, svc, wl.component, replicas)
    if affinity:
        pod["affinity"] = affinity
    spread = ha.zone_spread(site, svc, wl.component, replicas)
    if spread:
        pod["topologySpreadConstraints"] = spread
    if not wl.placed and wl.nodes is not None:
        # nodes="" : the service's own nodeSelector/tolerations (services.<svc>.nodeSelector)
        agents = site.get(".".join(filter(None, ("services", svc, wl.nodes))), {}) or {}
        if agents.get("nodeSelector"):
            pod["nodeSelector"] = dict(sorted(agents["nodeSelector"].items()))
        if agents.get("tolerations"):
            pod["tolerations"] = agents["tolerations"]
    comp = site.get(f"services.{svc}.{wl.component}", {}) if wl.component else {}
    if comp.get("resources"):
        pod["containers"] = [{"name": wl.container, "resources": comp["resources"]}]
    patch: dict[str, Any] = _nest(_pod_spec_path(wl.kind), pod) if pod else {"spec": {}}
    schedule = comp.get("schedule") if wl.kind == "CronJob" else None
    if schedule:
        patch["spec"]["schedule"] = schedule
    if wl.claim:
        storage = comp.get("storage", {})
        claim_spec: dict[str, Any] = {
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": storage.get("size", "10Gi")}},
        }
        if storage.get("storageClass"):
            claim_spec["storageClassName"] = storage["storageClass"]
        patch["spec"]["volumeClaimTemplates"] = [
            {"metadata": {"name": wl.claim}, "spec": claim_spec}
        ]
    if not pod and not wl.claim and not schedule:
        return None
    return {
        "apiVersion": _api_version(wl.kind),
        "kind": wl.kind,
        "metadata": {"name": wl.name},
        **patch,
    }


def _api_version(kind: str) -> str:
    return "batch/v1" if kind in ("Job", "CronJob") else "apps/v1"


def _pdb(wl: Workload, svc: str) -> dict[str, Any]:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": wl.name},
        "spec": {
            "maxUnavailable": 1,
            "selector": ha.selector(svc, wl.component),
        },
    }


def remote_key(site: Site, source: str) -> dict[str, str]:
    """Where the secret store keeps a kolla password: secrets.refs, else keyPrefix+name."""
    ref = (site.get("secrets.refs", {}) or {}).get(source)
    if ref:
        out = {"key": ref["key"]}
        if ref.get("property"):
            out["property"] = ref["property"]
        return out
    return {"key": f"{site.get('secrets.keyPrefix', '')}{source}"}


def _external_secret(site: Site, spec: SecretSpec) -> dict[str, Any]:
    store = site.get("secrets.store")
    templates = {k.key: k.template for k in spec.keys if k.template}
    # a rotation's marker keys: the Jobs and pods of that generation wait for them
    templates.update(rotation.external_secret_markers(site, spec))
    target: dict[str, Any] = {
        "name": spec.name,
        "creationPolicy": "Owner",
        "deletionPolicy": "Retain",
    }
    if templates:
        target["template"] = {
            "engineVersion": "v2",
            "mergePolicy": "Merge",
            "type": "Opaque",
            "data": dict(sorted(templates.items())),
        }
    metadata: dict[str, Any] = {"name": spec.name}
    annotations = rotation.external_secret_annotations(site, spec)
    if annotations:  # a changed annotation: External Secrets fetches the keys again
        metadata["annotations"] = annotations
    return {
        "apiVersion": "external-secrets.io/v1",
        "kind": "ExternalSecret",
        "metadata": metadata,
        "spec": {
            "refreshInterval": site.get("secrets.refreshInterval"),
            "secretStoreRef": {"kind": store["kind"], "name": store["name"]},
            "target": target,
            "data": [
                {"secretKey": k.key, "remoteRef": remote_key(site, k.source)}
                for k in spec.keys
                if k.source
            ],
        },
    }


@dataclass(frozen=True)
class Provenance:
    """Where a tree comes from, for its README. Only values that stay the same when the same
    inputs are rebuilt: in the site repository itself the source commit is left out (it would
    change with every commit of the output and never converge; the commit's Source-Commit
    trailer carries it), in a deploy repository it is the site repository's commit."""

    kustomize: str | None = None  # version of the engine that validated the tree
    deploy_repo: bool = False  # built into a separate deploy repository (--repo)
    source_url: str | None = None  # the site repository's origin (deploy repository mode)
    source_commit: str | None = None
    source_dirty: bool = False
    branch: str | None = None  # --branch, if given


GITATTRIBUTES = (
    b"# Generated by kkc: review tools collapse these files (GitHub: linguist-generated,\n"
    b"# GitLab: gitlab-generated); `git diff` and `kkc diff` still show them in full.\n"
    b"* linguist-generated=true gitlab-generated\n"
)


def _source_lines(site: Site, prov: Provenance) -> list[str]:
    if not prov.deploy_repo:
        return [
            "- Source: this repository (`sites/`, `base/`, `overlays/`); the commit that last",
            "  changed this directory names the source commit in its `Source-Commit` trailer",
            f"- Regenerate: `kkc build {site.name}` (commit with `kkc build {site.name} --commit`)",
        ]
    where = f"`{prov.source_url}`" if prov.source_url else "a site repository without remote"
    commit = f"commit `{prov.source_commit}`" if prov.source_commit else "no commit"
    dirty = " plus uncommitted changes" if prov.source_dirty else ""
    branch = f" --branch {prov.branch}" if prov.branch else ""
    return [
        f"- Source: {where}, {commit}{dirty}",
        f"- Regenerate: in a checkout of that repository, `kkc build {site.name} "
        f"--repo PATH-OF-THIS-REPOSITORY{branch} --commit`",
        "- `base/` and `overlays/` of this repository are byte copies of the ones this site uses",
    ]


_README_RELEASE = re.compile(r"^- OpenStack (\S+) on ", re.M)


def readme_release(text: str) -> str | None:
    """The OpenStack release that a deploy/<site>/README.md written by :func:`_readme`
    names (the release of that output), or None."""
    found = _README_RELEASE.search(text)
    return found.group(1) if found else None


def _readme(site: Site, outputs: list[ServiceOutput], stages: list[str], prov: Provenance) -> bytes:
    lines = [
        f"# deploy/{site.name}",
        "",
        f"Generated by kkc {__version__} from `sites/{site.name}/site.yaml` and the layers",
        "beneath it. Do not edit: every file here is owned by kkc and is rewritten or removed",
        "on the next build.",
        "",
        *_source_lines(site, prov),
        f"- Inspect: `kkc render {site.name}`, `kkc show {site.name} --explain PATH`",
        f"- Secrets this site expects: `kkc secrets {site.name}`",
        f"- OpenStack {site.get('openstack.release')} on {site.get('openstack.distro')}, "
        f"Kubernetes {site.get('kubernetes.version')}, namespace `{site.get('namespace')}`",
        f"- Services: {', '.join(o.name for o in outputs)}",
        *([f"- Validated with kustomize v{prov.kustomize}"] if prov.kustomize else []),
        "",
        "Bring-up stages, in order (Argo CD sync waves; Flux Kustomizations with dependsOn):",
        "",
        *(f"- `{s}/`: {STAGES[s.split('/')[1]]}" for s in stages),
        "",
        f"`{gitops.BOOTSTRAP}` holds the {site.get('gitops.engine')} objects that deploy this "
        "tree; apply it once",
        f"(`kubectl apply -f {gitops.BOOTSTRAP}`). The controller itself never applies it: "
        "no kustomization lists it.",
        "",
    ]
    return "\n".join(lines).encode()


def all_secrets(outputs: list[ServiceOutput]) -> list[SecretSpec]:
    return [s for o in outputs for s in o.secrets]


def _wave_transformer(wave: int) -> str:
    """Inline builtin AnnotationsTransformer: the stage's Argo CD sync wave on every object
    (metadata only, so a wave change never rolls pods)."""
    return dump(
        {
            "apiVersion": "builtin",
            "kind": "AnnotationsTransformer",
            "metadata": {"name": "argocd-sync-wave"},
            "annotations": {WAVE: str(wave)},
            "fieldSpecs": [{"path": "metadata/annotations", "create": True}],
        }
    ).rstrip("\n")


def _job_replace_patch() -> dict[str, Any]:
    return {
        "target": {"kind": "Job"},
        "patch": dump(
            {
                "apiVersion": "batch/v1",
                "kind": "Job",
                "metadata": {"name": "any", "annotations": JOB_REPLACE},
            }
        ).rstrip("\n"),
    }


def _stage_resources(
    site: Site, stage: str, outputs: list[ServiceOutput], files: dict[str, bytes]
) -> tuple[list[str], list[dict[str, Any]], list[Any]]:
    """(resources, Jobs, database jobs) of a stage: the namespace (infra), the common
    db-init and registration bases, each service's base and extra bases, its Jobs and its
    generated objects (those are added to ``files``)."""
    resources: list[str] = []
    if stage == "infra":
        files["namespace.yaml"] = _yaml_file(
            site,
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {"name": site.get("namespace"), "annotations": dict(KEEP)},
            },
        )
        resources.append("namespace.yaml")
    db_jobs = [j for o in outputs for j in o.db_jobs(stage)]
    jobs = [db_sync_job(site, j) for j in db_jobs]
    if any(j.databases for j in db_jobs):  # the db-init script of kolla-toolbox
        resources.append(f"{BASE_REL}/base/common/db")
    if stage == "register":
        jobs = [registration_job(site, o.registration) for o in outputs if o.registration]
        if jobs:
            resources.append(f"{BASE_REL}/base/common/register")
    if stage == "finish":  # the second phase of service users' rotations
        retire = [retire_job(site, o.registration) for o in outputs if o.registration]
        if any(retire):
            jobs += [j for j in retire if j]
            resources.append(f"{BASE_REL}/base/common/retire")
    for o in outputs:
        if stage in o.stages():
            resources.append(f"{BASE_REL}/base/{o.name}/{stage}")
        resources += [f"{BASE_REL}/base/{extra}" for extra in o.extra_bases.get(stage, [])]
    for job in jobs:
        rel = f"jobs/{job['metadata']['name']}-job.yaml"
        files[rel] = _yaml_file(site, job)
        resources.append(rel)
    for o in outputs:
        for obj in o.manifests.get(stage, []):
            rel = f"objects/{obj['metadata']['name']}-{obj['kind'].lower()}.yaml"
            files[rel] = _yaml_file(site, obj)
            resources.append(rel)
    return resources, jobs, db_jobs


def _stage_generators(
    stage: str, outputs: list[ServiceOutput], db_jobs: list[Any], files: dict[str, bytes]
) -> list[dict[str, Any]]:
    """The configMapGenerator entries of a stage's config files (added to ``files``)."""
    configs = [c for o in outputs for c in o.configs.get(stage, [])]
    configs += [s.config for j in db_jobs for s in j.steps]
    generators = []
    for cfg in configs:
        names = []
        for fname, content in sorted(cfg.all_files().items()):
            rel = f"config/{cfg.name}/{fname}"
            files[rel] = content.encode()
            names.append(f"{fname}={rel}")
        generators.append({"name": cfg.name, "files": names})
    return generators


def _stage_patches(
    site: Site,
    stage: str,
    outputs: list[ServiceOutput],
    has_jobs: bool,
    site_patches: list[SitePatch],
    files: dict[str, bytes],
    resources: list[str],
    rotated: list[dict[str, Any]] | None = None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(patches, replicas) of a stage: each workload's patch and replica count (and its
    PodDisruptionBudget, added to ``resources``), the services' extra patches, the
    rotation generations in pod templates (``rotated``), the Job replace patch, then the
    site's own patches last."""
    patches, replicas = [], []
    for out in outputs:
        for wl in (w for w in out.workloads if w.stage == stage):
            has_jobs = has_jobs or wl.kind == "Job"
            patch = _workload_patch(site, out.name, wl)
            if patch:
                rel = f"patches/{wl.name}-{wl.kind.lower()}.yaml"
                files[rel] = _yaml_file(site, patch)
                patches.append({"path": rel})
            if wl.scalable:
                count = _replicas(site, out.name, wl)
                replicas.append({"name": wl.name, "count": count})
                if count > 1:
                    rel = f"pdb/{wl.name}-poddisruptionbudget.yaml"
                    files[rel] = _yaml_file(site, _pdb(wl, out.name))
                    resources.append(rel)
        for extra in out.patches.get(stage, []):
            name, kind = extra["metadata"]["name"], extra["kind"].lower()
            rel = f"patches/{name}-{kind}-{out.name}.yaml"
            files[rel] = _yaml_file(site, extra)
            patches.append({"path": rel})
    for patch in rotated or []:
        rel = f"rotation/{patch['metadata']['name']}-{patch['kind'].lower()}.yaml"
        files[rel] = _yaml_file(site, patch)
        patches.append({"path": rel})
    if has_jobs:
        patches.append(_job_replace_patch())
    for site_patch in site_patches:  # the site's own, last
        rel = f"site-patches/{site_patch.file}"
        files[rel] = site_patch.text()
        patches.append(site_patch.entry(rel))
    return patches, replicas


def _external_secrets(
    site: Site, outputs: list[ServiceOutput], files: dict[str, bytes], resources: list[str]
) -> None:
    """The ExternalSecret of each Secret that kkc does not create in the cluster."""
    for spec in all_secrets(outputs):
        if spec.created_by:
            continue
        rel = f"secrets/{spec.name}-externalsecret.yaml"
        files[rel] = _yaml_file(site, _external_secret(site, spec))
        resources.append(rel)


def _stage(
    site: Site,
    stage: str,
    wave: int,
    outputs: list[ServiceOutput],
    images: list[dict],
    site_patches: list[SitePatch],
    rotated: list[dict[str, Any]],
) -> dict[str, bytes]:
    """The files of deploy/<site>/stages/<stage>/, or {} when the stage is empty."""
    files: dict[str, bytes] = {}
    resources, jobs, db_jobs = _stage_resources(site, stage, outputs, files)
    generators = _stage_generators(stage, outputs, db_jobs, files)
    patches, replicas = _stage_patches(
        site, stage, outputs, bool(jobs), site_patches, files, resources, rotated
    )
    if stage == "infra" and site.get("secrets.backend") == "external-secrets":
        _external_secrets(site, outputs, files, resources)
    if not files and not resources:
        return {}
    kustomization: dict[str, Any] = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "namespace": site.get("namespace"),
        "labels": [{"pairs": {KKC_LABEL: site.name, STAGE_LABEL: stage}}],
        "resources": resources,
        "transformers": [_wave_transformer(wave)],
        "images": images,
    }
    ov_components = site.overlay_components.get(stage, ())
    if ov_components:
        kustomization["components"] = [f"{BASE_REL}/{c}" for c in ov_components]
    if replicas:
        kustomization["replicas"] = replicas
    if generators:
        kustomization["configMapGenerator"] = generators
    if patches:
        kustomization["patches"] = patches
    files["kustomization.yaml"] = _yaml_file(site, kustomization)
    return files


def render_tree(
    site: Site,
    site_patches: dict[str, list[SitePatch]] | None = None,
    provenance: Provenance | None = None,
    *,
    outputs: Outputs | None = None,
    rotated: dict[str, list[dict[str, Any]]] | None = None,
) -> dict[str, bytes]:
    """deploy/<site>/ as {relative path: bytes} from the site's ``outputs`` (computed here
    when not given: :func:`kkc.outputs.compute`); ``site_patches`` are the site's own
    patches by the stage of their targets (see :func:`kkc.patches.route`), ``rotated`` the
    rotation generations of pod templates by stage (:func:`kkc.rotation.patches`). Changes
    nothing it is given, so one ``outputs`` renders any number of trees."""
    computed = outputs or compute(site)
    services, every = computed.services, computed.all
    release, distro = site.get("openstack.release"), site.get("openstack.distro")
    tag = image_tag(release, distro, site.get("openstack.tagSuffix", ""))
    prefix = f"{site.get('openstack.registry')}/{site.get('openstack.namespace')}"
    images = [
        {"name": f"kolla/{img}", "newName": f"{prefix}/{img}", "newTag": tag}
        for img in sorted({img for o in every for img in o.images})
    ]
    files: dict[str, bytes] = {}
    stages = []
    for index, stage in enumerate(STAGES):
        stage_files = _stage(
            site,
            stage,
            index * 10,
            every,
            images,
            (site_patches or {}).get(stage, []),
            (rotated or {}).get(stage, []),
        )
        if stage_files:
            stages.append(f"stages/{stage}")
            files.update({f"stages/{stage}/{rel}": data for rel, data in stage_files.items()})
    kustomization: dict[str, Any] = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": stages,
    }
    files["kustomization.yaml"] = _yaml_file(site, kustomization)
    files["README.md"] = _readme(site, services, stages, provenance or Provenance())
    files[".gitattributes"] = GITATTRIBUTES
    names = [s.split("/")[1] for s in stages]
    files[gitops.BOOTSTRAP] = gitops.bootstrap_yaml(site, gitops.bootstrap_objects(site, names))
    return dict(sorted(files.items()))
