"""Glance: bring-up order (db-sync step, stages), registration, the file store (generated
PersistentVolumeClaim and its mount) and the rbd store (Ceph Secret), eventlet on 2025.1
and uwsgi on 2026.1, and that sites of both releases build and validate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import make_repo
from helpers import add_site, doc, ini, minimal, run_script, service_output, tree

FILE = """\
    glance: image.example.com
openstack:
  release: "2025.1"
  distro: rocky
services:
  glance:
    enabled: true
    storage:
      size: 300Gi
      storageClass: cephfs
    api:
      replicas: 2
      workers: 3
"""
FILE_SINGLE = FILE.replace("      replicas: 2\n", "      replicas: 1\n").replace(
    "      storageClass: cephfs\n", ""
)
RBD = """\
    glance: image.example.com
openstack:
  release: "2026.1"
  distro: ubuntu
services:
  glance:
    enabled: true
    backend: rbd
    rbd:
      pool: os-images
      user: os-glance
"""


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = make_repo(tmp_path_factory.mktemp("glance") / "repo")
    add_site(root, "glance-a", minimal("glance-a", FILE))
    add_site(root, "glance-b", minimal("glance-b", RBD))
    add_site(root, "glance-c", minimal("glance-c", FILE_SINGLE))
    return root


def test_db_sync_expands_and_migrates_and_the_finish_job_contracts(repo: Path) -> None:
    """kolla-ansible's rolling upgrade of glance: expand and migrate before glance-api
    rolls (stage db), contract once every pod runs the new release (stage finish)."""
    files = tree(repo, "glance-a")
    pod = doc(files, "stages/db/jobs/glance-db-sync-job.yaml")["spec"]["template"]["spec"]
    steps = [(c["name"], c["image"]) for c in pod["initContainers"] + pod["containers"]]
    assert steps == [("db-init", "kolla/kolla-toolbox"), ("db-sync", "kolla/glance-api")]
    env = {e["name"]: e.get("value") for e in pod["initContainers"][0]["env"]}
    assert env["DB_NAME"] == "glance" and env["DB_USER"] == "glance"

    def command(stage: str, cfg: str) -> str:
        return json.loads(files[f"stages/{stage}/config/{cfg}/config.json"])["command"]

    assert command("db", "glance-db-sync-kolla") == "/bin/bash /etc/glance/kkc-db-sync.sh"
    finish = doc(files, "stages/finish/jobs/glance-db-finish-job.yaml")["spec"]["template"]
    assert [c["name"] for c in finish["spec"]["containers"]] == ["db-contract"]
    assert command("finish", "glance-db-contract-kolla") == "glance-manage db contract"
    for step in pod["containers"] + finish["spec"]["containers"]:
        assert {"name": "KOLLA_SKIP_EXTEND_START", "value": ""} in step["env"]


NEW_DB = "Database is either not under migration control or under legacy migration control"


@pytest.mark.parametrize(
    ("version", "version_rc", "want_calls", "want_rc"),
    [
        (NEW_DB, 0, ["db version", "db_sync", "db_load_metadefs"], 0),
        ("2025_01_expand01\n2025_01_contract01", 0,
         ["db version", "db expand", "db migrate", "db_load_metadefs"], 0),
        ("", 1, ["db version"], 1),
    ],
)  # fmt: skip
def test_db_sync_gives_a_new_database_the_whole_schema_and_expands_an_existing_one(
    repo: Path, tmp_path: Path, version: str, version_rc: int, want_calls: list, want_rc: int
) -> None:
    """A new database needs every release's contract migrations too (db_sync), an earlier
    release's is expanded and migrated under the old API pods; stand-ins for glance-manage
    record the calls."""
    script = tree(repo, "glance-a")["stages/db/config/glance-db-sync-kolla/kkc-db-sync.sh"]
    calls = tmp_path / "calls"
    code = run_script(
        script,
        tmp_path,
        {
            "glance-manage": f'echo "$*" >> {calls}\n'
            f'if [ "$*" = "db version" ]; then echo "{version}"; exit {version_rc}; fi'
        },
    )
    assert code.returncode == want_rc, code
    assert calls.read_text().splitlines() == want_calls


def test_stages_of_jobs_and_workloads(repo: Path) -> None:
    files = tree(repo, "glance-a")
    assert "stages/db/jobs/glance-db-sync-job.yaml" in files
    assert "stages/register/jobs/glance-ks-register-job.yaml" in files
    out = service_output(repo, "glance-a", "glance")
    assert {w.name: w.stage for w in out.workloads} == {"glance-api": "services"}
    assert out.stages() == ["services"]
    kustomization = doc(files, "stages/services/kustomization.yaml")
    assert "../../../../base/glance/services" in kustomization["resources"]
    assert {"name": "glance-api", "count": 2} in kustomization["replicas"]
    # keystone comes before glance, glance before the services stage
    assert not any(k.startswith("stages/identity/") and "glance" in k for k in files)


def test_registration_image_endpoints(repo: Path) -> None:
    files = tree(repo, "glance-a")
    job = doc(files, "stages/register/jobs/glance-ks-register-job.yaml")
    env = {
        e["name"]: e.get("value") for e in job["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    spec = json.loads(env["KKC_REGISTRATION"])
    assert spec["user"] == "glance" and spec["roles"] == ["admin"]
    assert spec["services"] == [
        {
            "type": "image",
            "name": "glance",
            "description": "OpenStack Image",
            "endpoints": {
                "internal": "http://glance-api.openstack.svc:9292",
                "public": "https://image.example.com",
            },
        }
    ]


def test_file_store_on_a_shared_claim_eventlet_on_2025_1(repo: Path) -> None:
    files = tree(repo, "glance-a")
    conf = ini(files["stages/services/config/glance-api-kolla/glance-api.conf"])
    assert conf.get("DEFAULT", "enabled_backends") == "file:file, http:http"
    assert conf.get("glance_store", "default_backend") == "file"
    assert conf.get("file", "filesystem_store_datadir") == "/var/lib/glance/images/"
    assert conf.get("DEFAULT", "bind_port") == "9292"
    assert conf.get("DEFAULT", "workers") == "3"
    assert conf.get("keystone_authtoken", "service_type") == "image"
    assert conf.get("paste_deploy", "flavor") == "keystone"
    api = json.loads(files["stages/services/config/glance-api-kolla/config.json"])
    assert api["command"] == "glance-api"
    dests = [c["dest"] for c in api["config_files"]]
    assert dests == [
        "/etc/glance/glance-api.conf",
        "/etc/glance/glance.conf.d/50-kkc-secrets.conf",
    ]
    claim = doc(files, "stages/services/objects/glance-images-persistentvolumeclaim.yaml")
    assert claim["spec"] == {
        "accessModes": ["ReadWriteMany"],  # two replicas share the images
        "resources": {"requests": {"storage": "300Gi"}},
        "storageClassName": "cephfs",
    }
    # the images outlive the controller objects: neither Flux nor Argo CD deletes the claim
    assert claim["metadata"]["annotations"] == {
        "kustomize.toolkit.fluxcd.io/prune": "disabled",
        "argocd.argoproj.io/sync-options": "Delete=false",
    }
    kustomization = doc(files, "stages/services/kustomization.yaml")
    assert "objects/glance-images-persistentvolumeclaim.yaml" in kustomization["resources"]
    patch = doc(files, "stages/services/patches/glance-api-deployment-glance.yaml")
    assert patch["spec"]["template"]["spec"]["volumes"] == [
        {
            "name": "glance-images",
            "emptyDir": None,
            "persistentVolumeClaim": {"claimName": "glance-images"},
        }
    ]
    assert "strategy" not in patch["spec"]  # rolling update on a shared volume
    assert {"path": "patches/glance-api-deployment-glance.yaml"} in kustomization["patches"]
    assert not any("glance-ceph" in k for k in files)


def test_single_replica_file_store_is_read_write_once_and_recreated(repo: Path) -> None:
    files = tree(repo, "glance-c")
    claim = doc(files, "stages/services/objects/glance-images-persistentvolumeclaim.yaml")
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert claim["spec"]["resources"]["requests"]["storage"] == "300Gi"
    assert "storageClassName" not in claim["spec"]
    patch = doc(files, "stages/services/patches/glance-api-deployment-glance.yaml")
    assert patch["spec"]["strategy"] == {"type": "Recreate", "rollingUpdate": None}


def test_rbd_store_with_ceph_secret_uwsgi_on_2026_1(repo: Path) -> None:
    files = tree(repo, "glance-b")
    conf = ini(files["stages/services/config/glance-api-kolla/glance-api.conf"])
    assert conf.get("DEFAULT", "enabled_backends") == "rbd:rbd, http:http"
    assert conf.get("glance_store", "default_backend") == "rbd"
    assert conf.get("rbd", "rbd_store_pool") == "os-images"
    assert conf.get("rbd", "rbd_store_user") == "os-glance"
    assert conf.get("rbd", "rbd_store_ceph_conf") == "/etc/ceph/ceph.conf"
    assert not conf.has_option("DEFAULT", "bind_port")  # uwsgi binds
    api = json.loads(files["stages/services/config/glance-api-kolla/config.json"])
    assert api["command"] == "uwsgi /etc/glance/glance-api-uwsgi.ini"
    uwsgi = ini(files["stages/services/config/glance-api-kolla/glance-api-uwsgi.ini"])
    assert uwsgi.get("uwsgi", "module") == "glance.wsgi.api:application"
    assert uwsgi.get("uwsgi", "http") == "0.0.0.0:9292"
    assert uwsgi.get("uwsgi", "http-chunked-input") == "true"
    assert not any("persistentvolumeclaim" in k for k in files)
    out = service_output(repo, "glance-b", "glance")
    ceph = next(s for s in out.secrets if s.name == "glance-ceph")
    assert [k.key for k in ceph.keys] == ["ceph.conf", "ceph.client.os-glance.keyring"]
    assert ceph.created_by is None


@pytest.mark.parametrize("name", ["glance-a", "glance-b"])
def test_site_builds_and_validates(repo: Path, kkc, name: str) -> None:
    result = kkc(repo, "build", name)
    assert result.exit_code == 0, result.output
