"""Overlays ha and ceph on the example production site site-a (which lists both): replica
counts, PodDisruptionBudgets, spread over nodes and zones; RBD back ends of Glance, Cinder
and Nova with ceph.conf, keyrings and libvirt secrets from Secrets only; and the errors of
a Ceph site missing or mixing up its libvirt secret UUIDs."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import pytest
import yaml

from conftest import Built, make_repo, snapshot
from helpers import add_site, doc, ini, minimal, tree
from kkc.build import secret_requirements
from kkc.site import load_site

UUID = "5b9b4a4e-9b43-4c2c-8d8a-6f1f4c3f0c11"  # site-a's libvirt secret of client.cinder
OTHER = "0d2a6b1e-3c4f-4a5b-8c6d-7e8f9a0b1c2d"
ZONE = "topology.kubernetes.io/zone"
HOST = "kubernetes.io/hostname"
# Workloads with more than one replica on site-a: (kind, name, service, component, replicas)
REPLICATED = [
    ("StatefulSet", "memcached", "memcached", "server", 3),
    ("Deployment", "keystone-api", "keystone", "api", 3),
    ("Deployment", "glance-api", "glance", "api", 2),
    ("Deployment", "placement-api", "placement", "api", 2),
    ("Deployment", "cinder-api", "cinder", "api", 2),
    ("Deployment", "cinder-scheduler", "cinder", "scheduler", 2),
    ("Deployment", "neutron-server", "neutron", "server", 2),
    ("Deployment", "ovn-northd", "neutron", "ovnNorthd", 2),
    ("Deployment", "nova-api", "nova", "api", 2),
    ("Deployment", "nova-metadata", "nova", "metadata", 2),
    ("Deployment", "nova-conductor", "nova", "conductor", 2),
    ("Deployment", "nova-scheduler", "nova", "scheduler", 2),
    ("Deployment", "nova-novncproxy", "nova", "novncproxy", 2),
    ("Deployment", "heat-api", "heat", "api", 2),
    ("Deployment", "heat-api-cfn", "heat", "cfn", 2),
    ("Deployment", "heat-engine", "heat", "engine", 2),
    ("Deployment", "horizon", "horizon", "server", 2),
]
# Single instances by design or because clustering is not implemented (KKC126).
SINGLE = [
    ("StatefulSet", "mariadb"),
    ("StatefulSet", "rabbitmq"),
    ("Deployment", "cinder-volume"),
]
# RAFT clusters of 3 (docs/bases.md), spread over nodes by anti-affinity
RAFT = [
    ("StatefulSet", "ovn-nb-db", "neutron", "ovnNbDb"),
    ("StatefulSet", "ovn-sb-db", "neutron", "ovnSbDb"),
]


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_repo(tmp_path_factory.mktemp("haceph") / "repo")


@pytest.fixture
def objects(built_sites: Built) -> dict[tuple[str, str], dict]:
    """site-a as kustomize builds it, validated (Kubernetes and CRD schemas, lint): what
    `kkc render site-a` printed."""
    docs = [d for d in built_sites.rendered("site-a") if d]
    return {(d["kind"], d["metadata"]["name"]): d for d in docs}


def _pod(obj: dict) -> dict:
    return obj["spec"]["template"]["spec"]


def _selector(svc: str, component: str) -> dict:
    return {
        "matchLabels": {"app.kubernetes.io/name": svc, "app.kubernetes.io/component": component}
    }


def _section(conf, name: str) -> dict[str, str]:
    """The options of one section, without [DEFAULT]'s (configparser mixes them in)."""
    return {k: v for k, v in conf.items(name) if k not in conf.defaults()}


def test_site_a_lists_both_overlays(repo: Path) -> None:
    site = load_site(repo, "site-a")
    assert {"ha", "ceph"} <= set(site.get("overlays"))
    assert site.get("ha.enabled") is True
    origin = site.origins[("services", "nova", "api", "replicas")]
    assert (origin.path, origin.layer) == ("overlays/ha/defaults.yaml", "overlay ha")


def test_ha_replicas_and_disruption_budgets(objects: dict) -> None:
    for kind, name, svc, component, replicas in REPLICATED:
        assert objects[(kind, name)]["spec"]["replicas"] == replicas, name
        pdb = objects[("PodDisruptionBudget", name)]["spec"]
        assert pdb == {"maxUnavailable": 1, "selector": _selector(svc, component)}, name
    for kind, name in SINGLE:
        assert objects[(kind, name)]["spec"]["replicas"] == 1, name
        assert ("PodDisruptionBudget", name) not in objects, name
    for kind, name, svc, component in RAFT:
        assert objects[(kind, name)]["spec"]["replicas"] == 3, name
        pdb = objects[("PodDisruptionBudget", name)]["spec"]
        assert pdb == {"maxUnavailable": 1, "selector": _selector(svc, component)}, name
    pdbs = {n for k, n in objects if k == "PodDisruptionBudget"}
    assert pdbs == {name for _, name, *_ in REPLICATED + RAFT}


def test_ha_spreads_every_replicated_workload_over_nodes_and_zones(objects: dict) -> None:
    for kind, name, svc, component, _ in REPLICATED:
        spread = {
            c["topologyKey"]: c for c in _pod(objects[(kind, name)])["topologySpreadConstraints"]
        }
        assert set(spread) == {HOST, ZONE}, name
        for key in (HOST, ZONE):
            assert spread[key] == {
                "maxSkew": 1,
                "topologyKey": key,
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": _selector(svc, component),
            }, (name, key)
    for kind, name in SINGLE:
        keys = [
            c["topologyKey"]
            for c in _pod(objects[(kind, name)]).get("topologySpreadConstraints", [])
        ]
        assert ZONE not in keys, name


def test_replicated_workloads_prefer_different_nodes(objects: dict) -> None:
    for kind, name, svc, component, _ in REPLICATED:
        assert _pod(objects[(kind, name)])["affinity"] == {
            "podAntiAffinity": {
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    {
                        "weight": 100,
                        "podAffinityTerm": {
                            "labelSelector": _selector(svc, component),
                            "topologyKey": HOST,
                        },
                    }
                ]
            }
        }, name
    for kind, name in SINGLE:
        assert "affinity" not in _pod(objects[(kind, name)]), name


def test_ha_spread_is_a_site_value(repo: Path) -> None:
    extra = """\
overlays: [ha]
ha:
  antiAffinity: required
  spread:
    topologyKey: example.com/rack
    whenUnsatisfiable: DoNotSchedule
services:
  mariadb:
    backup: {enabled: false}
  keystone:
    api: {replicas: 1}
"""
    add_site(repo, "ha-strict", minimal("ha-strict", extra))
    files = tree(repo, "ha-strict")
    memcached = doc(files, "stages/infra/patches/memcached-statefulset.yaml")
    assert memcached["spec"]["template"]["spec"]["topologySpreadConstraints"] == [
        {
            "maxSkew": 1,
            "topologyKey": "example.com/rack",
            "whenUnsatisfiable": "DoNotSchedule",
            "labelSelector": _selector("memcached", "server"),
        }
    ]
    assert memcached["spec"]["template"]["spec"]["affinity"] == {
        "podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": _selector("memcached", "server"), "topologyKey": HOST}
            ]
        }
    }
    # the site's single keystone replica: no zone spread, no PodDisruptionBudget
    keystone = doc(files, "stages/identity/patches/keystone-api-deployment.yaml")
    assert "topologySpreadConstraints" not in keystone["spec"]["template"]["spec"]
    assert "affinity" not in keystone["spec"]["template"]["spec"]
    assert "stages/identity/pdb/keystone-api-poddisruptionbudget.yaml" not in files
    # the Galera members (overlay ha: provider mariadb-operator) spread the same way
    mdb = doc(files, "stages/infra/objects/mariadb-mariadb.yaml")["spec"]
    assert mdb["topologySpreadConstraints"] == [
        {
            "maxSkew": 1,
            "topologyKey": "example.com/rack",
            "whenUnsatisfiable": "DoNotSchedule",
            "labelSelector": {
                "matchLabels": {
                    "app.kubernetes.io/name": "mariadb",
                    "app.kubernetes.io/instance": "mariadb",
                }
            },
        }
    ]
    assert mdb["affinity"] == {"antiAffinityEnabled": True}


def test_ha_overlay_clusters_mariadb_and_rabbitmq_through_their_providers_and_the_ovn_databases(
    repo: Path,
) -> None:
    """Of the stateful tier the overlay changes MariaDB's provider (a Galera cluster of
    mariadb-operator) and RabbitMQ's (a cluster of RabbitMQ's cluster operator), 3 replicas
    each by the providers' defaults, and makes the OVN databases RAFT clusters of 3 (issue
    17: the ha overlay selects the clustered providers)."""
    defaults = yaml.safe_load((repo / "overlays" / "ha" / "defaults.yaml").read_text())
    assert defaults["services"]["mariadb"] == {"provider": "mariadb-operator"}
    assert defaults["services"]["rabbitmq"] == {"provider": "rabbitmq-operator"}
    neutron = defaults["services"]["neutron"]
    assert (neutron["ovnNbDb"], neutron["ovnSbDb"]) == ({"replicas": 3}, {"replicas": 3})


def test_ceph_nova_conf_of_the_computes(example_trees: Mapping) -> None:
    files = example_trees["site-a"]
    conf = ini(files["stages/compute/config/nova-compute-kolla/nova.conf"])
    assert _section(conf, "libvirt") == {
        "virt_type": "kvm",
        "connection_uri": "qemu:///system",
        "images_type": "rbd",
        "images_rbd_pool": "vms",
        "images_rbd_ceph_conf": "/etc/ceph/ceph.conf",
        "disk_cachemodes": "network=writeback",
        "hw_disk_discard": "unmap",
        "rbd_user": "cinder",
        "rbd_secret_uuid": UUID,
        "cpu_mode": "host-model",  # site-a's config/nova/nova-compute.conf
    }
    controller = ini(files["stages/services/config/nova-api-kolla/nova.conf"])
    assert not controller.has_section("libvirt")
    glance = ini(files["stages/services/config/glance-api-kolla/glance-api.conf"])
    assert glance.get("rbd", "rbd_store_pool") == "images"
    assert glance.get("rbd", "rbd_store_user") == "glance"
    cinder = ini(files["stages/services/config/cinder-volume-kolla/cinder.conf"])
    assert cinder.get("rbd-1", "rbd_pool") == "volumes"
    assert cinder.get("rbd-1", "rbd_user") == "cinder"
    assert cinder.get("rbd-1", "rbd_secret_uuid") == UUID


def test_ceph_libvirt_secret_in_nova_libvirt(example_trees: Mapping) -> None:
    files = example_trees["site-a"]
    cfg = "stages/compute/config/nova-libvirt-kolla"
    assert files[f"{cfg}/{UUID}.xml"].decode() == (
        "<secret ephemeral='no' private='no'>\n"
        f"  <uuid>{UUID}</uuid>\n"
        "  <usage type='ceph'>\n"
        "    <name>client.cinder secret</name>\n"
        "  </usage>\n"
        "</secret>\n"
    )
    copies = {c["dest"]: c for c in json.loads(files[f"{cfg}/config.json"])["config_files"]}
    assert copies[f"/etc/libvirt/secrets/{UUID}.xml"]["source"] == (
        f"/var/lib/kolla/config_files/{UUID}.xml"
    )
    key = copies[f"/etc/libvirt/secrets/{UUID}.base64"]
    assert key == {
        "source": f"/var/lib/kolla/secret_files/{UUID}.base64",
        "dest": f"/etc/libvirt/secrets/{UUID}.base64",
        "owner": "root",
        "perm": "0600",
    }
    assert copies["/etc/ceph/ceph.conf"]["source"] == "/var/lib/kolla/secret_files/ceph.conf"


def test_ceph_mounts_of_the_compute_pods(objects: dict) -> None:
    compute = _pod(objects[("DaemonSet", "nova-compute")])
    mounts = {m["name"]: m for m in compute["containers"][0]["volumeMounts"]}
    assert mounts["ceph"] == {"name": "ceph", "mountPath": "/etc/ceph", "readOnly": True}
    volumes = {v["name"]: v for v in compute["volumes"]}
    assert volumes["ceph"]["secret"] == {
        "secretName": "nova-ceph",
        "defaultMode": 0o440,
        "optional": True,
    }
    assert compute["securityContext"]["fsGroup"] == 42436  # nova reads the keyring
    libvirt = _pod(objects[("DaemonSet", "nova-libvirt")])
    mounts = {m["name"]: m["mountPath"] for m in libvirt["containers"][0]["volumeMounts"]}
    assert mounts["kolla-secrets"] == "/var/lib/kolla/secret_files"
    volumes = {v["name"]: v for v in libvirt["volumes"]}
    assert volumes["kolla-secrets"]["secret"]["secretName"] == "nova-ceph"


def test_ceph_keyrings_only_from_secrets(repo: Path, objects: dict) -> None:
    needs = {s["name"]: s for s in secret_requirements(load_site(repo, "site-a"))}
    keys = {k["key"]: k for k in needs["nova-ceph"]["keys"]}
    assert list(keys) == ["ceph.conf", "ceph.client.cinder.keyring", f"{UUID}.base64"]
    assert keys["ceph.conf"]["kollaPassword"] == "nova_ceph_conf"
    # client.cinder is Cinder's user: one keyring in the store for both services
    assert keys["ceph.client.cinder.keyring"]["kollaPassword"] == "cinder_ceph_keyring"
    assert keys[f"{UUID}.base64"]["template"] == (
        '{{ index . "ceph.client.cinder.keyring" '
        "| regexFind `key\\s*=\\s*\\S+` | regexFind `[A-Za-z0-9+/]+=*$` }}"
    )
    assert keys[f"{UUID}.base64"]["content"] == "<ceph.client.cinder.keyring, its key only>"
    assert [k["key"] for k in needs["glance-ceph"]["keys"]] == [
        "ceph.conf",
        "ceph.client.glance.keyring",
    ]
    assert [k["key"] for k in needs["cinder-ceph"]["keys"]] == [
        "ceph.conf",
        "ceph.client.cinder.keyring",
    ]
    external = objects[("ExternalSecret", "nova-ceph")]["spec"]
    assert external["data"] == [
        {"secretKey": "ceph.conf", "remoteRef": {"key": "openstack/site-a/nova_ceph_conf"}},
        {
            "secretKey": "ceph.client.cinder.keyring",
            "remoteRef": {"key": "openstack/site-a/cinder_ceph_keyring"},
        },
    ]
    assert not [k for k, _ in objects if k == "Secret"]  # nothing secret in the output


CEPH_SITE = """\
    nova: compute.example.com
    novncproxy: console.example.com
    glance: image.example.com
    placement: placement.example.com
    neutron: network.example.com
    cinder: volume.example.com
overlays: [ceph]
services:
  glance: {{enabled: true}}
  placement: {{enabled: true}}
  neutron: {{enabled: true}}
  cinder:
    enabled: true
    rbd: {{secretUuid: {uuid}}}
  nova:
    enabled: true
{nova}"""


def test_ceph_nova_with_its_own_user_gets_a_second_libvirt_secret(repo: Path) -> None:
    extra = CEPH_SITE.format(uuid=UUID, nova=f"    rbd: {{user: nova, secretUuid: {OTHER}}}\n")
    add_site(repo, "ceph-two", minimal("ceph-two", extra))
    files = tree(repo, "ceph-two")
    conf = ini(files["stages/compute/config/nova-compute-kolla/nova.conf"])
    assert conf.get("libvirt", "rbd_user") == "nova"
    assert conf.get("libvirt", "rbd_secret_uuid") == OTHER
    cfg = "stages/compute/config/nova-libvirt-kolla"
    assert "client.nova secret" in files[f"{cfg}/{OTHER}.xml"].decode()
    assert "client.cinder secret" in files[f"{cfg}/{UUID}.xml"].decode()
    needs = {s["name"]: s for s in secret_requirements(load_site(repo, "ceph-two"))}
    keys = {k["key"]: k.get("kollaPassword") for k in needs["nova-ceph"]["keys"]}
    assert keys == {
        "ceph.conf": "nova_ceph_conf",
        "ceph.client.nova.keyring": "nova_ceph_keyring",
        "ceph.client.cinder.keyring": "cinder_ceph_keyring",
        f"{OTHER}.base64": None,
        f"{UUID}.base64": None,
    }


def test_local_disks_need_no_ceph_for_nova(repo: Path, example_trees: Mapping) -> None:
    files = example_trees["site-b"]  # no cinder, nova on local disks
    conf = ini(files["stages/compute/config/nova-compute-kolla/nova.conf"])
    assert _section(conf, "libvirt") == {"virt_type": "qemu", "connection_uri": "qemu:///system"}
    names = {s["name"] for s in secret_requirements(load_site(repo, "site-b"))}
    assert "nova-ceph" not in names


def _failed_build(kkc, repo: Path, name: str, text: str):
    add_site(repo, name, minimal(name, text))
    before = snapshot(repo)
    result = kkc(repo, "build", name)
    assert snapshot(repo) == before, "a failed build changed the repository"
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    return result.stderr.splitlines()


def test_ceph_without_the_nova_secret_uuid_is_an_error(site_repo: Path, kkc) -> None:
    lines = _failed_build(
        kkc,
        site_repo,
        "ceph-nouuid",
        CEPH_SITE.format(uuid=UUID, nova="    compute: {virtType: qemu}\n"),
    )
    # the site's nova entry (line 21) is where the value belongs
    assert lines == [
        "sites/ceph-nouuid/site.yaml:21:3: KKC113 services.nova.rbd: the rbd back end needs "
        "secretUuid: the libvirt secret UUID under which the computes hold the Ceph key of "
        "the nova rbd user"
    ]


def test_ceph_nova_and_cinder_disagree_on_the_secret_of_one_user(site_repo: Path, kkc) -> None:
    nova = f"    rbd:\n      secretUuid: {OTHER}\n"
    lines = _failed_build(kkc, site_repo, "ceph-twouuid", CEPH_SITE.format(uuid=UUID, nova=nova))
    assert lines == [
        "sites/ceph-twouuid/site.yaml:24:19: KKC155 services.nova.rbd.secretUuid: must be "
        f"services.cinder.rbd.secretUuid ({UUID}): Nova and Cinder both use client.cinder, "
        "and libvirt holds one secret per Ceph user"
    ]
