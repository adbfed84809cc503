"""Cinder: bring-up order (db-sync step, online migrations in stage finish, stages of Jobs
and workloads), registration, the back-end section for rbd and lvm, where cinder-volume
runs, the Ceph Secret, the iSCSI pieces of lvm (tgtd beside cinder-volume with tgtadm,
iscsid on the compute and storage nodes, /etc/iscsi shared with nova-compute), and that
sites of 2025.1 (rbd, lvm on rocky) and 2026.1 (lvm on ubuntu, with and without Nova)
build and validate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import make_repo
from helpers import (
    add_site,
    assert_finish_after_compute,
    bring_up_order,
    doc,
    finish_step,
    ini,
    minimal,
    service_output,
    tree,
)
from kkc import kustomize
from kkc.site import load_site
from kkc.yamlio import load_stream

UUID = "5b67401f-dc5e-496a-8456-9a5dc40e7d3c"
RBD = f"""\
    cinder: volume.example.com
openstack:
  release: "2025.1"
  distro: rocky
services:
  cinder:
    enabled: true
    rbd:
      pool: cinder-volumes
      user: openstack-cinder
      secretUuid: {UUID}
    api:
      replicas: 2
      workers: 3
"""
LVM = """\
    cinder: volume.example.com
openstack:
  release: "2026.1"
  distro: ubuntu
services:
  cinder:
    enabled: true
    backend: lvm
    backendName: lvm-ssd
    lvm:
      volumeGroup: vg-ssd
    volume:
      nodeSelector:
        kubernetes.io/hostname: storage-1
      tolerations:
        - key: dedicated
          operator: Equal
          value: storage
          effect: NoSchedule
"""
# LVM with Nova on ubuntu (tgtadm): iscsid on the computes and the storage node.
LVM_NOVA = """\
    cinder: volume.example.com
    glance: image.example.com
    placement: placement.example.com
    neutron: network.example.com
    nova: compute.example.com
    novncproxy: console.example.com
openstack:
  release: "2026.1"
  distro: ubuntu
services:
  glance:
    enabled: true
  placement:
    enabled: true
  neutron:
    enabled: true
  nova:
    enabled: true
    compute:
      nodeSelector:
        kind: hypervisor
      tolerations:
        - key: dedicated
          operator: Equal
          value: compute
          effect: NoSchedule
  cinder:
    enabled: true
    backend: lvm
    volume:
      nodeSelector:
        kubernetes.io/hostname: storage-1
      tolerations:
        - key: dedicated
          operator: Equal
          value: storage
          effect: NoSchedule
"""
# LVM on rocky without Nova: the kernel target (lioadm), no tgtd.
LVM_ROCKY = """\
    cinder: volume.example.com
openstack:
  release: "2025.1"
  distro: rocky
services:
  cinder:
    enabled: true
    backend: lvm
"""


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = make_repo(tmp_path_factory.mktemp("cinder") / "repo")
    add_site(root, "cinder-a", minimal("cinder-a", RBD))
    add_site(root, "cinder-b", minimal("cinder-b", LVM))
    add_site(root, "cinder-c", minimal("cinder-c", LVM_NOVA))
    add_site(root, "cinder-d", minimal("cinder-d", LVM_ROCKY))
    return root


def test_db_sync_creates_the_database_then_bootstraps_with_cinder_api(repo: Path) -> None:
    files = tree(repo, "cinder-a")
    pod = doc(files, "stages/db/jobs/cinder-db-sync-job.yaml")["spec"]["template"]["spec"]
    steps = [(c["name"], c["image"]) for c in pod["initContainers"] + pod["containers"]]
    assert steps == [("db-init", "kolla/kolla-toolbox"), ("db-sync", "kolla/cinder-api")]
    env = {e["name"]: e.get("value") for e in pod["initContainers"][0]["env"]}
    assert env["DB_NAME"] == "cinder" and env["DB_USER"] == "cinder"
    sync = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
    # the image's mode: cinder-manage db sync only (it has no KOLLA_UPGRADE)
    assert sync == {"KOLLA_CONFIG_STRATEGY": "COPY_ALWAYS", "KOLLA_BOOTSTRAP": ""}


@pytest.mark.parametrize("name", ["cinder-a", "site-a"])
def test_online_data_migrations_in_stage_finish(repo: Path, name: str) -> None:
    """KOLLA_OSM once cinder-api, -scheduler and -volume run the new release; on site-a
    (with computes) after stage compute."""
    files = tree(repo, name)
    _pod, step = finish_step(files, "cinder")
    assert (step["name"], step["image"]) == ("online-data-migrations", "kolla/cinder-api")
    env = {e["name"]: e.get("value") for e in step["env"]}
    assert env == {"KOLLA_CONFIG_STRATEGY": "COPY_ALWAYS", "KOLLA_OSM": ""}
    cfg = "stages/finish/config/cinder-online-migrations-kolla"
    assert json.loads(files[f"{cfg}/config.json"])["command"] == (
        "cinder-manage db online_data_migrations"
    )
    late = [rel for rel, data in files.items() if b"online_data_migrations" in data]
    assert late and all(rel.startswith("stages/finish/") for rel in late)
    if name == "site-a":
        assert_finish_after_compute(repo, name)
    else:  # no compute stage: finish follows services
        assert list(bring_up_order(repo, name)[1].items())[-1] == ("finish", ["services"])


def test_stages_of_jobs_and_workloads(repo: Path) -> None:
    files = tree(repo, "cinder-a")
    assert "stages/db/jobs/cinder-db-sync-job.yaml" in files
    assert "stages/register/jobs/cinder-ks-register-job.yaml" in files
    out = service_output(repo, "cinder-a", "cinder")
    assert {w.name: w.stage for w in out.workloads} == {
        "cinder-api": "services",
        "cinder-scheduler": "services",
        "cinder-volume": "services",
    }
    assert out.stages() == ["services"]
    kustomization = doc(files, "stages/services/kustomization.yaml")
    assert "../../../../base/cinder/services" in kustomization["resources"]
    assert {"name": "cinder-api", "count": 2} in kustomization["replicas"]


def test_registration_block_storage_and_legacy_volumev3(repo: Path) -> None:
    files = tree(repo, "cinder-a")
    job = doc(files, "stages/register/jobs/cinder-ks-register-job.yaml")
    env = {
        e["name"]: e.get("value") for e in job["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    spec = json.loads(env["KKC_REGISTRATION"])
    assert spec["user"] == "cinder" and spec["roles"] == ["admin", "service"]
    services = {(s["type"], s["name"]): s["endpoints"] for s in spec["services"]}
    assert set(services) == {("block-storage", "cinder"), ("volumev3", "cinderv3")}
    for endpoints in services.values():
        assert endpoints == {
            "internal": "http://cinder-api.openstack.svc:8776/v3/%(project_id)s",
            "public": "https://volume.example.com/v3/%(project_id)s",
        }


def test_rbd_backend_section_and_api_under_uwsgi(repo: Path) -> None:
    files = tree(repo, "cinder-a")
    conf = ini(files["stages/services/config/cinder-volume-kolla/cinder.conf"])
    assert conf.get("DEFAULT", "enabled_backends") == "rbd-1"
    assert conf.get("rbd-1", "volume_driver") == "cinder.volume.drivers.rbd.RBDDriver"
    assert conf.get("rbd-1", "rbd_pool") == "cinder-volumes"
    assert conf.get("rbd-1", "rbd_user") == "openstack-cinder"
    assert conf.get("rbd-1", "rbd_secret_uuid") == UUID
    assert conf.get("rbd-1", "rbd_ceph_conf") == "/etc/ceph/ceph.conf"
    # volumes keep their host when the pod lands on another node
    assert conf.get("rbd-1", "backend_host") == "rbd:cinder-volumes"
    assert conf.get("nova", "username") == "cinder"
    api = json.loads(files["stages/services/config/cinder-api-kolla/config.json"])
    assert api["command"] == "uwsgi /etc/cinder/cinder-api-uwsgi.ini"
    uwsgi = ini(files["stages/services/config/cinder-api-kolla/cinder-api-uwsgi.ini"])
    assert uwsgi.get("uwsgi", "module") == "cinder.wsgi.api:application"
    assert uwsgi.get("uwsgi", "http-socket") == "0.0.0.0:8776"
    assert uwsgi.get("uwsgi", "processes") == "3"


def test_rbd_ceph_secret_is_listed_and_volume_on_the_control_plane(repo: Path) -> None:
    out = service_output(repo, "cinder-a", "cinder")
    ceph = next(s for s in out.secrets if s.name == "cinder-ceph")
    assert [k.key for k in ceph.keys] == ["ceph.conf", "ceph.client.openstack-cinder.keyring"]
    assert ceph.created_by is None  # the operator provides it (ExternalSecret here)
    files = tree(repo, "cinder-a")
    assert "stages/infra/secrets/cinder-ceph-externalsecret.yaml" in files
    patch = doc(files, "stages/services/patches/cinder-volume-deployment.yaml")
    # control-plane placement (none in this site), not the storage nodes of lvm
    assert "nodeSelector" not in patch["spec"]["template"]["spec"]
    secrets = {s.name: s for s in out.secrets}
    drop_in = next(k for k in secrets["cinder-secrets"].keys if k.key == "cinder.conf")
    assert "[nova]\npassword = " in drop_in.template


def test_lvm_backend_on_the_storage_node(repo: Path) -> None:
    files = tree(repo, "cinder-b")
    conf = ini(files["stages/services/config/cinder-volume-kolla/cinder.conf"])
    assert conf.get("DEFAULT", "enabled_backends") == "lvm-ssd"
    assert conf.get("lvm-ssd", "volume_driver") == "cinder.volume.drivers.lvm.LVMVolumeDriver"
    assert conf.get("lvm-ssd", "volume_group") == "vg-ssd"
    assert conf.get("lvm-ssd", "target_helper") == "tgtadm"  # ubuntu image: tgt
    assert conf.get("lvm-ssd", "target_protocol") == "iscsi"
    assert not conf.has_option("lvm-ssd", "backend_host")  # volumes belong to the node
    pod = doc(files, "stages/services/patches/cinder-volume-deployment.yaml")["spec"]["template"]
    assert pod["spec"]["nodeSelector"] == {
        "kubernetes.io/hostname": "storage-1",
        "openstack-storage-node": "enabled",
    }
    assert pod["spec"]["tolerations"][0]["value"] == "storage"
    assert {s.name for s in service_output(repo, "cinder-b", "cinder").secrets} == {
        "cinder-secrets"
    }


def test_rbd_needs_the_secret_uuid(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo")
    add_site(root, "cinder-x", minimal("cinder-x", RBD.replace(f"      secretUuid: {UUID}\n", "")))
    with pytest.raises(Exception, match="secretUuid"):
        load_site(root, "cinder-x")


@pytest.mark.parametrize("name", ["cinder-a", "cinder-b", "cinder-c", "cinder-d"])
def test_site_builds_and_validates(repo: Path, kkc, name: str) -> None:
    result = kkc(repo, "build", name)
    assert result.exit_code == 0, result.output


def built(repo: Path, kkc, name: str, stage: str) -> dict[tuple[str, str], dict]:
    """The objects of one stage as kustomize builds them (after kkc build)."""
    result = kkc(repo, "build", name)
    assert result.exit_code == 0, result.output
    path = repo / "deploy" / name / "stages" / stage
    return {
        (o["kind"], o["metadata"]["name"]): o for o in load_stream(kustomize.build(path, stage))
    }


def mounts(container: dict) -> dict[str, str]:
    return {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}


def test_lvm_tgtadm_runs_tgtd_beside_cinder_volume(repo: Path, kkc) -> None:
    objs = built(repo, kkc, "cinder-c", "services")
    pod = objs[("Deployment", "cinder-volume")]["spec"]["template"]["spec"]
    # a native sidecar: started (and answering tgtadm) before cinder-volume re-exports
    [tgtd] = pod["initContainers"]
    assert tgtd["name"] == "tgtd" and tgtd["restartPolicy"] == "Always"
    assert tgtd["image"] == "registry.example.com/kolla/tgtd:2026.1-ubuntu-noble"
    assert tgtd["securityContext"]["privileged"] is True
    assert tgtd["startupProbe"]["exec"]["command"][:1] == ["tgtadm"]
    volume = next(c for c in pod["containers"] if c["name"] == "cinder-volume")
    # tgtadm in cinder-volume reaches tgtd's socket in the host's /run; both see /dev
    for path in ("/run", "/dev", "/lib/modules", "/var/lib/cinder"):
        assert mounts(tgtd)[path] == mounts(volume)[path], path
    assert mounts(volume)["/etc/iscsi"] == "iscsi-info"
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["iscsi-info"]["hostPath"]["path"] == "/var/lib/kolla/iscsi_info"
    config = volumes[mounts(tgtd)["/var/lib/kolla/config_files"]]["configMap"]["name"]
    assert config.startswith("tgtd-kolla-")
    assert json.loads(objs[("ConfigMap", config)]["data"]["config.json"]) == {
        "command": "tgtd -d 1 -f",
        "config_files": [],
    }
    conf = ini(
        objs[("ConfigMap", volumes["kolla-config"]["configMap"]["name"])]["data"]["cinder.conf"]
    )
    assert conf.get("lvm-1", "target_helper") == "tgtadm"


def test_lvm_iscsid_on_compute_and_storage_nodes(repo: Path, kkc) -> None:
    objs = built(repo, kkc, "cinder-c", "compute")
    # the nodes of nova-compute or of cinder-volume (nodeSelectors merged with the defaults)
    iscsid = objs[("DaemonSet", "iscsid")]["spec"]["template"]["spec"]
    terms = iscsid["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert terms["nodeSelectorTerms"] == [
        {
            "matchExpressions": [
                {"key": "kind", "operator": "In", "values": ["hypervisor"]},
                {"key": "openstack-compute-node", "operator": "In", "values": ["enabled"]},
            ]
        },
        {
            "matchExpressions": [
                {"key": "kubernetes.io/hostname", "operator": "In", "values": ["storage-1"]},
                {"key": "openstack-storage-node", "operator": "In", "values": ["enabled"]},
            ]
        },
    ]
    assert [t["value"] for t in iscsid["tolerations"]] == ["compute", "storage"]
    assert iscsid["hostNetwork"] is True
    [container] = iscsid["containers"]
    assert container["image"] == "registry.example.com/kolla/iscsid:2026.1-ubuntu-noble"
    assert container["securityContext"]["privileged"] is True
    assert {"/dev", "/run", "/lib/modules", "/etc/iscsi"} <= set(mounts(container))
    config = next(v for v in iscsid["volumes"] if v["name"] == "kolla-config")
    assert json.loads(objs[("ConfigMap", config["configMap"]["name"])]["data"]["config.json"]) == {
        "command": "iscsid -d 8 -f",
        "config_files": [],
    }
    # nova-compute (os-brick) reads the initiator name iscsid created on the node
    compute = objs[("DaemonSet", "nova-compute")]["spec"]["template"]["spec"]
    assert mounts(compute["containers"][0])["/etc/iscsi"] == "iscsi-info"
    volumes = {v["name"]: v for v in compute["volumes"]}
    iscsid_volumes = {v["name"]: v for v in iscsid["volumes"]}
    assert volumes["iscsi-info"] == iscsid_volumes["iscsi-info"]


def test_lvm_lioadm_has_no_tgtd_and_iscsid_only_on_the_storage_node(repo: Path) -> None:
    files = tree(repo, "cinder-d")
    conf = ini(files["stages/services/config/cinder-volume-kolla/cinder.conf"])
    assert conf.get("lvm-1", "target_helper") == "lioadm"
    patch = doc(files, "stages/services/patches/cinder-volume-deployment-cinder.yaml")
    pod = patch["spec"]["template"]["spec"]
    assert "initContainers" not in pod  # the kernel target needs no daemon
    assert pod["containers"] == [
        {
            "name": "cinder-volume",
            "volumeMounts": [{"name": "iscsi-info", "mountPath": "/etc/iscsi"}],
        }
    ]
    assert not any(rel.startswith("stages/services/config/tgtd-kolla/") for rel in files)
    out = service_output(repo, "cinder-d", "cinder")
    assert "tgtd" not in out.images and "iscsid" in out.images
    placement = doc(files, "stages/compute/patches/iscsid-daemonset-cinder.yaml")
    terms = placement["spec"]["template"]["spec"]["affinity"]["nodeAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"
    ]["nodeSelectorTerms"]
    assert terms == [
        {
            "matchExpressions": [
                {"key": "openstack-storage-node", "operator": "In", "values": ["enabled"]}
            ]
        }
    ]
    assert (
        "../../../../base/cinder/compute"
        in doc(files, "stages/compute/kustomization.yaml")["resources"]
    )


def test_rbd_has_no_iscsi(repo: Path) -> None:
    files = tree(repo, "cinder-a")
    assert not any("iscsid" in rel or "tgtd" in rel for rel in files)
    assert "stages/services/patches/cinder-volume-deployment-cinder.yaml" not in files
    assert "stages/compute/kustomization.yaml" not in files


def test_tgtadm_on_rocky_is_refused_for_want_of_a_tgtd_image(tmp_path: Path, kkc) -> None:
    root = make_repo(tmp_path / "repo")
    site = LVM_ROCKY.replace(
        "    backend: lvm\n", "    backend: lvm\n    lvm:\n      targetHelper: tgtadm\n"
    )
    add_site(root, "cinder-x", minimal("cinder-x", site))
    result = kkc(root, "build", "cinder-x")
    assert result.exit_code == 3, result.output
    assert (
        'KKC308 Deployment/cinder-volume: "tgtd" is not built for rocky on x86_64 by Kolla 20.6.0'
        in result.stderr
    )
