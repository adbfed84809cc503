"""Nova: bring-up order (db-sync steps, stages of Jobs and workloads), the INI options that
matter, the node-agent placement and the discovery schedule from the site, and that sites
of 2025.1 and 2026.1 with nova enabled build and validate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import make_repo
from helpers import (
    add_site,
    assert_finish_after_compute,
    doc,
    finish_step,
    ini,
    minimal,
    run_script,
    service_output,
    tree,
)
from kkc.site import load_site

NOVA = """\
    glance: image.example.com
    placement: placement.example.com
    neutron: network.example.com
    nova: compute.example.com
    novncproxy: console.example.com
openstack:
  release: "{release}"
  distro: {distro}
services:
  glance:
    enabled: true
  placement:
    enabled: true
  neutron:
    enabled: true
  nova:
    enabled: true
    api:
      replicas: 2
      workers: 3
    compute:
      virtType: qemu
      nodeSelector:
        kind: hypervisor
      tolerations:
        - key: dedicated
          operator: Equal
          value: compute
          effect: NoSchedule
    discoverHosts:
      schedule: "*/10 * * * *"
"""


def nova_site(root: Path, name: str, release: str = "2025.1", distro: str = "rocky") -> None:
    add_site(root, name, minimal(name, NOVA.format(release=release, distro=distro)))


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = make_repo(tmp_path_factory.mktemp("nova") / "repo")
    nova_site(root, "nova-a", "2025.1", "rocky")
    nova_site(root, "nova-b", "2026.1", "ubuntu")
    return root


def test_db_sync_creates_three_databases_then_runs_the_cell_steps_in_order(repo: Path) -> None:
    files = tree(repo, "nova-a")
    job = doc(files, "stages/db/jobs/nova-db-sync-job.yaml")
    pod = job["spec"]["template"]["spec"]
    steps = [(c["name"], c["image"]) for c in pod["initContainers"] + pod["containers"]]
    assert steps == [
        ("db-init", "kolla/kolla-toolbox"),
        ("upgrade-check", "kolla/nova-api"),
        ("api-db-sync", "kolla/nova-api"),
        ("map-cell0", "kolla/nova-api"),
        ("create-cell", "kolla/nova-conductor"),
        ("db-sync", "kolla/nova-conductor"),
    ]
    env = {e["name"]: e.get("value") for e in pod["initContainers"][0]["env"]}
    assert env["DB_NAME"] == "nova_api,nova,nova_cell0"
    assert env["DB_USER"] == "nova"

    def command(cfg: str) -> str:
        return json.loads(files[f"stages/db/config/{cfg}/config.json"])["command"]

    assert command("nova-api-db-sync-kolla") == "nova-manage api_db sync"
    # No --database_connection: cell0's URL comes from the drop-in's [database] connection.
    assert command("nova-map-cell0-kolla") == "nova-manage cell_v2 map_cell0"
    assert command("nova-db-sync-kolla") == "nova-manage db sync"  # every cell, cell0 too
    script = files["stages/db/config/nova-create-cell-kolla/kkc-create-cell.sh"].decode()
    assert "create_cell --name cell1" in script and "update_cell" in script
    assert command("nova-upgrade-check-kolla") == "/bin/bash /etc/nova/kkc-upgrade-check.sh"
    for step in pod["initContainers"][1:] + pod["containers"]:
        assert {"name": "KOLLA_SKIP_EXTEND_START", "value": ""} in step["env"]


def test_online_data_migrations_in_stage_finish_after_compute(repo: Path) -> None:
    """As kolla-ansible's upgrade: KOLLA_OSM once the conductors and computes run the new
    release, with the nova-conductor image; every cell (no --local_cell), and nowhere else."""
    files = tree(repo, "nova-a")
    _pod, step = finish_step(files, "nova")
    assert (step["name"], step["image"]) == ("online-data-migrations", "kolla/nova-conductor")
    assert {"name": "KOLLA_SKIP_EXTEND_START", "value": ""} in step["env"]
    cfg = json.loads(files["stages/finish/config/nova-online-migrations-kolla/config.json"])
    assert cfg["command"] == "nova-manage db online_data_migrations"
    late = [rel for rel, data in files.items() if b"online_data_migrations" in data]
    assert "stages/finish/config/nova-online-migrations-kolla/config.json" in late
    assert all(rel.startswith("stages/finish/") for rel in late)
    # the control plane's nova.conf: the API database and the cells' mappings in it
    conf = ini(files["stages/finish/config/nova-online-migrations-kolla/nova.conf"])
    assert conf.get("api_database", "max_retries") == "-1"
    assert_finish_after_compute(repo, "nova-a")


def test_stages_of_jobs_and_workloads(repo: Path) -> None:
    files = tree(repo, "nova-a")
    assert "stages/register/jobs/nova-ks-register-job.yaml" in files
    services = doc(files, "stages/services/kustomization.yaml")["resources"]
    compute = doc(files, "stages/compute/kustomization.yaml")["resources"]
    assert "../../../../base/nova/services" in services
    assert "../../../../base/nova/compute" in compute
    out = service_output(repo, "nova-a", "nova")
    stages = {w.name: w.stage for w in out.workloads}
    assert stages == {
        "nova-api": "services",
        "nova-metadata": "services",
        "nova-conductor": "services",
        "nova-scheduler": "services",
        "nova-novncproxy": "services",
        "nova-libvirt": "compute",
        "nova-compute": "compute",
        "nova-discover-hosts": "compute",
    }
    assert out.stages() == ["services", "compute"]
    for stage in out.stages():
        assert (Path(__file__).parent.parent / "base" / "nova" / stage).is_dir()


def test_registration(repo: Path) -> None:
    job = doc(tree(repo, "nova-a"), "stages/register/jobs/nova-ks-register-job.yaml")
    env = {
        e["name"]: e.get("value") for e in job["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    spec = json.loads(env["KKC_REGISTRATION"])
    assert spec["user"] == "nova"
    assert spec["roles"] == ["admin", "service"]
    (service,) = spec["services"]
    assert service["type"] == "compute"
    assert service["endpoints"] == {
        "internal": "http://nova-api.openstack.svc:8774/v2.1",
        "public": "https://compute.example.com/v2.1",
    }


def test_control_plane_ini(repo: Path) -> None:
    files = tree(repo, "nova-a")
    conf = ini(files["stages/services/config/nova-api-kolla/nova.conf"])
    assert conf.get("upgrade_levels", "compute") == "auto"
    assert conf.get("service_user", "send_service_user_token") == "true"
    # [service_user] has keystoneauth auth and session options, no adapter options.
    assert not conf.has_option("service_user", "valid_interfaces")
    assert conf.get("placement", "valid_interfaces") == "internal"
    assert conf.get("neutron", "service_metadata_proxy") == "true"
    assert conf.get("vnc", "novncproxy_base_url") == "https://console.example.com/vnc_lite.html"
    assert conf.get("vnc", "novncproxy_port") == "6080"
    assert conf.get("keystone_authtoken", "username") == "nova"
    for section in ("keystone_authtoken", "service_user", "placement", "neutron"):
        assert not conf.has_option(section, "password")
    assert not conf.has_option("database", "connection")
    assert not conf.has_option("api_database", "connection")
    uwsgi = ini(files["stages/services/config/nova-api-kolla/nova-api-uwsgi.ini"])
    assert uwsgi.get("uwsgi", "module") == "nova.wsgi.osapi_compute:application"
    assert uwsgi.get("uwsgi", "http-socket") == "0.0.0.0:8774"
    assert uwsgi.get("uwsgi", "processes") == "3"
    meta = ini(files["stages/services/config/nova-metadata-kolla/nova-metadata-uwsgi.ini"])
    assert meta.get("uwsgi", "module") == "nova.wsgi.metadata:application"
    assert meta.get("uwsgi", "http-socket") == "0.0.0.0:8775"
    api = json.loads(files["stages/services/config/nova-api-kolla/config.json"])
    assert api["command"] == "uwsgi /etc/nova/nova-api-uwsgi.ini"


def test_compute_ini_has_no_database_and_the_site_virt_type(repo: Path) -> None:
    files = tree(repo, "nova-a")
    conf = ini(files["stages/compute/config/nova-compute-kolla/nova.conf"])
    assert conf.get("libvirt", "virt_type") == "qemu"
    assert conf.get("DEFAULT", "compute_driver") == "libvirt.LibvirtDriver"
    assert conf.get("vnc", "server_proxyclient_address") == "$my_ip"
    assert not conf.has_section("database") and not conf.has_section("api_database")
    cfg = json.loads(files["stages/compute/config/nova-compute-kolla/config.json"])
    drop_in = [c for c in cfg["config_files"] if c["source"].startswith("/var/lib/kolla/secret")]
    assert drop_in[0]["source"].endswith("/nova-compute.conf")
    libvirtd = files["stages/compute/config/nova-libvirt-kolla/libvirtd.conf"].decode()
    assert "listen_tcp = 0" in libvirtd and 'unix_sock_group = "nova"' in libvirtd


def test_secret_drop_ins(repo: Path) -> None:
    (secret,) = service_output(repo, "nova-a", "nova").secrets
    keys = {k.key: k for k in secret.keys}
    assert keys["metadata-secret"].source == "metadata_secret"
    assert keys["memcache-secret-key"].source == "memcache_secret_key"
    controller = ini(keys["nova.conf"].template)
    assert controller.get("api_database", "connection").endswith("@mariadb:3306/nova_api")
    assert controller.get("database", "connection").endswith("@mariadb:3306/nova")
    assert "metadata-secret" in controller.get("neutron", "metadata_proxy_shared_secret")
    assert controller.has_option("keystone_authtoken", "memcache_secret_key")
    compute = ini(keys["nova-compute.conf"].template)
    assert not compute.has_section("database") and not compute.has_section("api_database")
    assert compute.has_option("DEFAULT", "transport_url")
    for section in ("service_user", "placement", "neutron"):
        assert compute.has_option(section, "password")


def test_node_agents_placed_by_the_site_and_discovery_schedule(repo: Path) -> None:
    files = tree(repo, "nova-a")
    for name in ("nova-compute", "nova-libvirt"):
        pod = doc(files, f"stages/compute/patches/{name}-daemonset.yaml")["spec"]["template"]
        assert pod["spec"]["nodeSelector"] == {
            "kind": "hypervisor",
            "openstack-compute-node": "enabled",
        }
        assert pod["spec"]["tolerations"][0]["key"] == "dedicated"
    cron = doc(files, "stages/compute/patches/nova-discover-hosts-cronjob.yaml")
    assert cron["spec"]["schedule"] == "*/10 * * * *"
    replicas = doc(files, "stages/services/kustomization.yaml")["replicas"]
    assert {"name": "nova-api", "count": 2} in replicas
    assert "stages/services/pdb/nova-api-poddisruptionbudget.yaml" in files


def test_releases_differ_only_in_images(repo: Path) -> None:
    a, b = tree(repo, "nova-a"), tree(repo, "nova-b")
    images_a = {
        i["name"]: i["newTag"] for i in doc(a, "stages/services/kustomization.yaml")["images"]
    }
    images_b = {
        i["name"]: i["newTag"] for i in doc(b, "stages/services/kustomization.yaml")["images"]
    }
    assert images_a["kolla/nova-api"] == "2025.1-rocky-9"
    assert images_b["kolla/nova-api"] == "2026.1-ubuntu-noble"
    for files in (a, b):
        api = json.loads(files["stages/services/config/nova-api-kolla/config.json"])
        assert api["command"] == "uwsgi /etc/nova/nova-api-uwsgi.ini"


def test_needs_the_novncproxy_host(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo")
    text = minimal("nova-x", NOVA.format(release="2025.1", distro="rocky"))
    add_site(root, "nova-x", text.replace("    novncproxy: console.example.com\n", ""))
    with pytest.raises(Exception, match="endpoints.hosts.novncproxy"):
        load_site(root, "nova-x")


@pytest.mark.parametrize("name", ["nova-a", "nova-b"])
def test_site_builds_and_validates(repo: Path, kkc, name: str) -> None:
    result = kkc(repo, "build", name)
    assert result.exit_code == 0, result.output


# What the fake nova-manage prints for `api_db version` and `cell_v2 list_hosts`, and the
# exit codes of each command; the upgrade check's decision follows from them.
NO_HOSTS = "+-----------+-----------+----------+\n| Cell Name | Cell UUID | Hostname |\n" * 1
ONE_HOST = NO_HOSTS + "| cell1 | 6f1c | compute-0 |\n+---+---+---+\n"


@pytest.mark.parametrize(
    ("version", "hosts", "manage_rc", "status_rc", "want_rc", "want_text"),
    [
        ("None", "", 0, 2, 0, "no schema yet (a first deployment): upgrade check skipped"),
        ("b30f573d3377", NO_HOSTS, 0, 2, 0, "no compute host is mapped yet"),
        ("b30f573d3377", ONE_HOST, 0, 0, 0, "status ran"),
        ("b30f573d3377", ONE_HOST, 0, 1, 0, "status ran"),  # warnings pass
        ("b30f573d3377", ONE_HOST, 0, 2, 2, "nova-status upgrade check failed (exit 2)"),
        ("b30f573d3377", ONE_HOST, 0, 255, 255, "failed (exit 255)"),
        ("", "", 1, 0, 1, "nova_api is not reachable: retrying"),
    ],
)
def test_the_upgrade_check_runs_nova_status_only_on_a_running_cloud_and_gates_on_its_code(
    repo: Path,
    tmp_path: Path,
    version: str,
    hosts: str,
    manage_rc: int,
    status_rc: int,
    want_rc: int,
    want_text: str,
) -> None:
    """kolla-ansible's rule: exit 0 and 1 of `nova-status upgrade check` pass, anything
    else stops the upgrade; a deployment without a nova_api schema or without a mapped
    compute host has nothing to upgrade (day one, or a retry before placement is up)."""
    script = tree(repo, "nova-a")["stages/db/config/nova-upgrade-check-kolla/kkc-upgrade-check.sh"]
    (tmp_path / "version").write_text(version + "\n")
    (tmp_path / "hosts").write_text(hosts)
    done = run_script(
        script,
        tmp_path,
        {
            "nova-manage": f"""case "$1 $2" in
  "api_db version") cat {tmp_path}/version; exit {manage_rc};;
  "cell_v2 list_hosts") cat {tmp_path}/hosts; exit {manage_rc};;
esac
exit 99""",
            "nova-status": f'[ "$*" = "upgrade check" ] || exit 98\necho "status ran"\nexit {status_rc}',
        },
    )
    assert done.returncode == want_rc, done
    assert want_text in done.stdout + done.stderr
