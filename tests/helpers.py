"""Small helpers shared by the test modules (fixtures live in conftest.py)."""

from __future__ import annotations

import configparser
import json
import re
import shutil
import subprocess
from pathlib import Path

import git
import yaml

from kkc import gitops, kustomize, validate
from kkc.build import object_key
from kkc.generate import WAVE, render_tree
from kkc.services import STAGES, ServiceOutput, enabled_services
from kkc.site import load_site
from kkc.yamlio import load_stream

PROJECT = Path(__file__).resolve().parent.parent

# A minimal valid site: everything else comes from the compiler defaults and the example
# repository's sites/defaults.yaml (registry, secret store, gitops.repoURL). Extra lines
# appended to it start at line 7.
MINIMAL = """\
schemaVersion: 1
name: {name}
namespace: openstack
endpoints:
  hosts:
    keystone: id.example.com
"""


def minimal(name: str, extra: str = "") -> str:
    return MINIMAL.format(name=name) + extra


# Two keystone-only sites (with mariadb, rabbitmq and memcached, 32 objects each) that build
# in about a second, where site-a takes several: for the tests of kkc's mechanisms (git
# safety, commits, diff formatting, check codes, deploy-repo copies), which do not depend on
# what a site deploys.
KEYSTONE_SITES = {
    "site-k": """\
# site-k: keystone only, External Secrets and Argo CD from the fleet defaults
schemaVersion: 1
name: site-k
namespace: openstack-k
region: K1
openstack:
  release: "2026.1"
  distro: ubuntu
endpoints:
  scheme: http
  hosts:
    keystone: keystone.k.example.com
services:
  keystone:
    tokenExpiration: 3600
""",
    "site-l": """\
# site-l: keystone only, Secrets created by hand, Flux
schemaVersion: 1
name: site-l
namespace: openstack-l
region: L1
openstack:
  release: "2025.1"
  distro: rocky
endpoints:
  scheme: http
  hosts:
    keystone: keystone.l.example.com
services:
  keystone:
    tokenExpiration: 7200
secrets:
  backend: existing
  store: null
gitops:
  engine: flux
""",
}


def keystone_repo(dest: Path, extra: dict[str, str] | None = None) -> Path:
    """A site repository with this project's base/, overlays/ and fleet defaults
    (sites/defaults.yaml), the sites of KEYSTONE_SITES and the ``extra`` files (path ->
    text), committed with the git CLI."""
    for part in ("base", "overlays"):
        shutil.copytree(PROJECT / part, dest / part)
    (dest / "sites").mkdir()
    shutil.copy(PROJECT / "sites" / "defaults.yaml", dest / "sites" / "defaults.yaml")
    for name, text in KEYSTONE_SITES.items():
        write(dest, f"sites/{name}/site.yaml", text)
    for rel, text in (extra or {}).items():
        write(dest, rel, text)
    repo = git.Repo.init(dest, initial_branch="main")
    repo.git.add("-A")  # the git CLI, as a user would
    repo.git.commit("-q", "-m", "site repository")
    return dest


def _edit_overlays(root: Path, site: str, edit) -> None:
    path = root / "sites" / site / "site.yaml"
    text = path.read_text(encoding="utf-8")
    match = re.search(r"^overlays: \[(.*)\]$", text, re.M)
    assert match, f"{path} has no one-line overlays list"
    names = edit([o.strip() for o in match.group(1).split(",") if o.strip()])
    path.write_text(text.replace(match.group(0), f"overlays: [{', '.join(names)}]"), "utf-8")


def drop_overlays(root: Path, site: str, *names: str) -> None:
    """Remove ``names`` from the one-line ``overlays: [...]`` list of a site."""
    _edit_overlays(root, site, lambda have: [o for o in have if o not in names])


def add_overlays(root: Path, site: str, *names: str) -> None:
    """Append ``names`` to the one-line ``overlays: [...]`` list of a site."""
    _edit_overlays(root, site, lambda have: [*have, *names])


def write(root: Path, rel: str, data: str | bytes) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, bytes):
        path.write_bytes(data)
    else:
        path.write_text(data, encoding="utf-8")
    return path


def commit(root: Path, paths: list[str], message: str = "test change") -> str:
    repo = git.Repo(root)
    repo.git.add("--", *paths)  # the git CLI, as a user would
    repo.git.commit("-q", "-m", message)
    return repo.head.commit.hexsha


def add_site(root: Path, name: str, data: str | bytes) -> None:
    """Write sites/<name>/site.yaml and commit it."""
    rel = f"sites/{name}/site.yaml"
    write(root, rel, data)
    commit(root, [rel], f"add site {name}")


def set_keystone_replicas(root: Path, replicas: int, site: str = "site-a") -> None:
    """site-a sets services.keystone.api.replicas: 3; change that value in the work tree."""
    path = root / "sites" / site / "site.yaml"
    text = path.read_text()
    old = "    api:\n      replicas: 3\n"
    assert old in text, f"sites/{site}/site.yaml no longer sets keystone api replicas 3"
    path.write_text(text.replace(old, f"    api:\n      replicas: {replicas}\n"))


def tree(repo: Path, name: str) -> dict[str, bytes]:
    """The file tree kkc generates for a site (no kustomize, nothing written)."""
    return render_tree(load_site(repo, name))


def doc(files: dict[str, bytes], rel: str) -> dict:
    return yaml.safe_load(files[rel])


def ini(text: bytes | str) -> configparser.RawConfigParser:
    """An INI file as oslo.config reads it (repeated keys allowed)."""
    parser = configparser.RawConfigParser(strict=False)
    parser.read_string(text.decode() if isinstance(text, bytes) else text)
    return parser


def service_output(repo: Path, name: str, service: str) -> ServiceOutput:
    return next(o for o in enabled_services(load_site(repo, name)) if o.name == service)


# --- the emulated reconcile: what Argo CD or Flux does with a fresh clone -----------------

GITOPS_GROUPS = ("argoproj.io", "source.toolkit.fluxcd.io", "kustomize.toolkit.fluxcd.io")
LAST_APPLIED_LIMIT = 262144  # bytes: the annotation limit that ServerSideApply would avoid


def set_engine(root: Path, site: str, engine: str) -> None:
    """Edit sites/<site>/site.yaml to use ``engine`` (its gitops: block sets it or not)."""
    path = root / "sites" / site / "site.yaml"
    text, count = re.subn(
        r"^gitops:\n(  engine: \w+\n)?",
        f"gitops:\n  engine: {engine}\n",
        path.read_text(),
        count=1,
        flags=re.M,
    )
    assert count == 1, f"{path} has no top-level gitops: block"
    path.write_text(text)


def controller_build(clone: Path, path: str, version: str) -> list[dict]:
    """kustomize build of one path the controller points at, and the objects validated
    against the schemas of the site's Kubernetes ``version`` and the CRD schemas."""
    objects = load_stream(kustomize.build(clone / path, path))
    problems, warnings = validate.validate_objects(objects, version, None, path)
    assert problems == [] and warnings == []
    assert objects
    for obj in objects:
        assert obj["apiVersion"].split("/")[0] not in GITOPS_GROUPS, (
            f"{path} applies a GitOps object ({object_key(obj)}): the controller would manage "
            "itself"
        )
        assert len(json.dumps(obj)) < LAST_APPLIED_LIMIT, object_key(obj)
    return objects


def expected_stages(clone: Path, site: str) -> list[str]:
    present = {p.name for p in (clone / "deploy" / site / "stages").iterdir()}
    return [s for s in STAGES if s in present]


def validated_objects(clone: Path, site: str) -> set[str]:
    """The objects kkc rendered and validated at build time (its ownership manifest)."""
    return set(json.loads((clone / "deploy" / site / ".kkc-files").read_text())["objects"])


def bring_up_order(repo: Path, name: str) -> tuple[dict[str, int], dict[str, list[str]]]:
    """A site's stages in the order of its kustomization.yaml, each with its Argo CD sync
    wave, and what each stage's Flux Kustomization would dependsOn were the site on Flux
    (gitops.engine switched in memory)."""
    site = load_site(repo, name)
    files = render_tree(site)
    stages = [r.removeprefix("stages/") for r in doc(files, "kustomization.yaml")["resources"]]
    waves = {}
    for stage in stages:
        [transformer] = doc(files, f"stages/{stage}/kustomization.yaml")["transformers"]
        waves[stage] = int(yaml.safe_load(transformer)["annotations"][WAVE])
    site.data["gitops"]["engine"] = "flux"
    flux = {
        k["metadata"]["name"].removeprefix(f"{name}-"): [
            d["name"].removeprefix(f"{name}-") for d in k["spec"].get("dependsOn", [])
        ]
        for k in gitops.bootstrap_objects(site, stages)
        if k["kind"] == "Kustomization"
    }
    assert list(flux) == stages
    return waves, flux


def assert_finish_after_compute(repo: Path, name: str) -> None:
    """Stage finish is the site's last stage, right after compute: in the stage list, in
    the Argo CD sync waves (after every other stage's) and in the Flux dependsOn chain."""
    waves, flux = bring_up_order(repo, name)
    assert list(waves)[-2:] == ["compute", "finish"]
    assert waves["finish"] > max(w for s, w in waves.items() if s != "finish")
    assert flux["finish"] == ["compute"]


def finish_step(files: dict[str, bytes], service: str) -> tuple[dict, dict]:
    """(pod spec, its one container) of the Job ``<service>-db-finish`` in stage finish,
    which needs no db-init container: the databases exist by then."""
    job = doc(files, f"stages/finish/jobs/{service}-db-finish-job.yaml")
    assert job["metadata"]["labels"]["app.kubernetes.io/component"] == "db-finish"
    pod = job["spec"]["template"]["spec"]
    assert "initContainers" not in pod
    [step] = pod["containers"]
    return pod, step


def crd_yaml(group: str, kind: str, versions: dict[str, dict], *, served: bool = True) -> str:
    """One CustomResourceDefinition: ``versions`` maps a version name to its
    openAPIV3Schema; every version has ``served`` and the first one is the storage version."""
    plural = kind.lower() + "s"
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {
            "group": group,
            "names": {"kind": kind, "plural": plural, "singular": kind.lower()},
            "scope": "Namespaced",
            "versions": [
                {
                    "name": name,
                    "served": served,
                    "storage": i == 0,
                    "schema": {"openAPIV3Schema": s},
                }
                for i, (name, s) in enumerate(versions.items())
            ],
        },
    }
    return yaml.safe_dump(crd, sort_keys=False)


def object_schema(spec: dict, required: list[str] | None = None) -> dict:
    """A custom resource's openAPIV3Schema with the given ``spec`` schema."""
    return {
        "type": "object",
        "description": "a custom resource",
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": spec,
        },
        **({"required": required} if required else {}),
    }


# the embedded ExternalSecret schema, but a cluster's own CRD of it that requires
# spec.refreshInterval and has no spec.data (a controller release that removed it)
STRICT_EXTERNAL_SECRET_CRD = crd_yaml(
    "external-secrets.io",
    "ExternalSecret",
    {
        "v1": object_schema(
            {
                "type": "object",
                "required": ["refreshInterval"],
                "properties": {
                    "refreshInterval": {"type": "string"},
                    "secretStoreRef": {
                        "type": "object",
                        "x-kubernetes-preserve-unknown-fields": True,
                    },
                    "target": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                    "dataFrom": {"type": "array", "items": {"type": "object"}},
                },
            }
        )
    },
)
# a kind kkc embeds no schema for
WIDGET_CRD = crd_yaml(
    "example.com",
    "Widget",
    {
        "v1": object_schema(
            {
                "type": "object",
                "required": ["size"],
                "properties": {"size": {"type": "integer", "minimum": 1}},
            }
        )
    },
)


def run_script(
    script: bytes, tmp_path: Path, stand_ins: dict[str, str]
) -> subprocess.CompletedProcess:
    """Run a generated bash script with ``stand_ins`` (command name -> bash body) first on
    PATH, for the branches of scripts whose real commands need a running cloud (make e2e
    runs them for real)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name, body in stand_ins.items():
        (bin_dir / name).write_text(f"#!/bin/bash\n{body}\n")
        (bin_dir / name).chmod(0o755)
    (tmp_path / "script.sh").write_bytes(script)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin"}
    return subprocess.run(
        ["bash", str(tmp_path / "script.sh")], env=env, capture_output=True, text=True
    )
