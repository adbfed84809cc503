"""Neutron with ML2/OVN, OVN and Open vSwitch: bring-up order, the options that matter,
the eventlet/uwsgi difference, node placement, secrets, and full builds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import make_repo
from helpers import add_site, ini, minimal, run_script
from kkc.generate import render_tree
from kkc.site import load_site
from kkc.yamlio import load_stream

NEUTRON = """\
    neutron: network.example.com
services:
  neutron:
    enabled: true
"""


def _site_text(name: str, release: str, extra: str = "") -> str:
    text = minimal(name)
    text = text.rstrip("\n") + "\n" + NEUTRON + extra
    return text + f'openstack:\n  release: "{release}"\n  distro: ubuntu\n'


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo")


def _tree(repo: Path, name: str, release: str, extra: str = "") -> dict[str, bytes]:
    add_site(repo, name, _site_text(name, release, extra))
    return render_tree(load_site(repo, name))


def _kustomization(tree: dict[str, bytes], stage: str) -> dict:
    return load_stream(tree[f"stages/{stage}/kustomization.yaml"].decode())[0]


def test_bring_up_order(repo: Path) -> None:
    tree = _tree(repo, "n1", "2025.1")
    infra = _kustomization(tree, "infra")
    assert "../../../../base/neutron/infra" in infra["resources"]
    assert {"ovn-nb-db-kolla", "ovn-sb-db-kolla", "ovn-northd-kolla"} <= {
        g["name"] for g in infra["configMapGenerator"]
    }
    assert "stages/db/jobs/neutron-db-sync-job.yaml" in tree
    assert "stages/register/jobs/neutron-ks-register-job.yaml" in tree
    services = _kustomization(tree, "services")
    assert "../../../../base/neutron/services" in services["resources"]
    compute = _kustomization(tree, "compute")
    assert "../../../../base/neutron/compute" in compute["resources"]
    assert {
        "openvswitch-db-server-kolla",
        "openvswitch-vswitchd-kolla",
        "ovn-controller-kolla",
        "ovn-controller-setup-kolla",
        "neutron-ovn-metadata-agent-kolla",
    } <= {g["name"] for g in compute["configMapGenerator"]}

    job = load_stream(tree["stages/db/jobs/neutron-db-sync-job.yaml"].decode())[0]
    pod = job["spec"]["template"]["spec"]
    assert [c["name"] for c in pod["initContainers"]] == ["db-init"]
    assert [c["name"] for c in pod["containers"]] == ["db-sync"]
    assert pod["containers"][0]["image"] == "kolla/neutron-server"
    sync = json.loads(tree["stages/db/config/neutron-db-sync-kolla/config.json"])
    assert sync["command"] == "/bin/bash /etc/neutron/kkc-db-sync.sh"
    # the contract migrations once every neutron-server runs the new release
    finish = load_stream(tree["stages/finish/jobs/neutron-db-finish-job.yaml"].decode())[0]
    assert [c["name"] for c in finish["spec"]["template"]["spec"]["containers"]] == ["db-contract"]
    contract = json.loads(tree["stages/finish/config/neutron-db-contract-kolla/config.json"])
    assert contract["command"] == (
        "neutron-db-manage --config-file /etc/neutron/neutron.conf "
        "--config-file /etc/neutron/plugins/ml2/ml2_conf.ini upgrade --contract"
    )

    reg = load_stream(tree["stages/register/jobs/neutron-ks-register-job.yaml"].decode())[0]
    env = {
        e["name"]: e.get("value") for e in reg["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    doc = json.loads(env["KKC_REGISTRATION"])
    assert doc["roles"] == ["admin", "service"]
    assert doc["services"][0]["type"] == "network"
    assert doc["services"][0]["endpoints"] == {
        "internal": "http://neutron-server.openstack.svc:9696",
        "public": "https://network.example.com",
    }


def test_ml2_and_ovn_options(repo: Path) -> None:
    tree = _tree(repo, "n2", "2025.1")
    ml2 = ini(tree["stages/services/config/neutron-server-kolla/ml2_conf.ini"])
    assert ml2.get("ml2", "mechanism_drivers") == "ovn"
    assert ml2.get("ml2", "type_drivers") == "flat,vlan,geneve"
    assert ml2.get("ml2", "tenant_network_types") == "geneve"
    assert ml2.get("ovn", "ovn_nb_connection") == "tcp:ovn-nb-db.openstack.svc:6641"
    assert ml2.get("ovn", "ovn_sb_connection") == "tcp:ovn-sb-db.openstack.svc:6642"
    assert ml2.get("ovn", "ovn_metadata_enabled") == "true"
    assert ml2.get("ml2_type_flat", "flat_networks") == "physnet1"
    conf = ini(tree["stages/services/config/neutron-server-kolla/neutron.conf"])
    assert conf.get("DEFAULT", "core_plugin") == "ml2"
    assert conf.get("DEFAULT", "service_plugins") == "ovn-router"
    nb = json.loads(tree["stages/infra/config/ovn-nb-db-kolla/config.json"])["command"]
    assert nb.startswith("/usr/share/ovn/scripts/ovn-ctl run_nb_ovsdb")
    assert "--db-nb-file=/var/lib/openvswitch/ovn-nb/ovnnb.db" in nb
    assert "cluster" not in nb  # standalone until RAFT is supported
    northd = json.loads(tree["stages/infra/config/ovn-northd-kolla/config.json"])["command"]
    assert "--ovnnb-db=tcp:ovn-nb-db.openstack.svc:6641" in northd
    assert "--ovnsb-db=tcp:ovn-sb-db.openstack.svc:6642" in northd


def test_eventlet_2025_1_and_uwsgi_2026_1(repo: Path) -> None:
    old = _tree(repo, "n3", "2025.1")
    cfg = json.loads(old["stages/services/config/neutron-server-kolla/config.json"])
    assert cfg["command"].startswith("neutron-server --config-file /etc/neutron/neutron.conf")
    assert (
        "../../../../base/neutron/services/uwsgi"
        not in _kustomization(old, "services")["resources"]
    )
    assert "stages/services/config/neutron-rpc-server-kolla/config.json" not in old
    assert (
        ini(old["stages/services/config/neutron-server-kolla/neutron.conf"]).get(
            "DEFAULT", "bind_port"
        )
        == "9696"
    )

    new = _tree(repo, "n4", "2026.1")
    cfg = json.loads(new["stages/services/config/neutron-server-kolla/config.json"])
    assert cfg["command"] == "uwsgi /etc/neutron/neutron-server-uwsgi.ini"
    uwsgi = new["stages/services/config/neutron-server-kolla/neutron-server-uwsgi.ini"].decode()
    assert "module = neutron.wsgi.api:application" in uwsgi
    assert "http-socket = 0.0.0.0:9696" in uwsgi
    assert "../../../../base/neutron/services/uwsgi" in _kustomization(new, "services")["resources"]
    for worker in (
        "neutron-rpc-server",
        "neutron-periodic-workers",
        "neutron-ovn-maintenance-worker",
    ):
        cfg = json.loads(new[f"stages/services/config/{worker}-kolla/config.json"])
        assert cfg["command"] == worker


def test_compute_nodes_and_controller_setup(repo: Path) -> None:
    tree = _tree(
        repo,
        "n5",
        "2025.1",
        "    nodeSelector: {openstack-compute-node: null, role: net}\n"
        "    bridgeMappings: [physnet1:br-ex, physnet2:br-vlan]\n"
        "    tunnelInterface: eth1\n",
    )
    patch = load_stream(tree["stages/compute/patches/ovn-controller-daemonset.yaml"].decode())[0]
    assert patch["spec"]["template"]["spec"]["nodeSelector"] == {"role": "net"}
    assert "tolerations" not in patch["spec"]["template"]["spec"]
    script = tree[
        "stages/compute/config/ovn-controller-setup-kolla/kkc-ovn-controller-setup"
    ].decode()
    assert "external_ids:ovn-encap-type=geneve" in script
    assert "external_ids:ovn-remote=tcp:ovn-sb-db.openstack.svc:6642" in script
    assert "external_ids:ovn-bridge-mappings=physnet1:br-ex,physnet2:br-vlan" in script
    assert "ip -4 -o addr show dev eth1" in script
    assert "vsctl --may-exist add-br br-vlan" in script
    default = _tree(repo, "n6", "2025.1")
    script = default[
        "stages/compute/config/ovn-controller-setup-kolla/kkc-ovn-controller-setup"
    ].decode()
    assert 'encap_ip="$HOST_IP"' in script
    assert "external_ids:ovn-cms-options=enable-chassis-as-gw" in script
    patch = load_stream(default["stages/compute/patches/openvswitch-db-daemonset.yaml"].decode())[0]
    assert patch["spec"]["template"]["spec"]["nodeSelector"] == {
        "openstack-compute-node": "enabled"
    }


def test_metadata_secret_from_the_kolla_password(repo: Path) -> None:
    from kkc.generate import all_secrets
    from kkc.services import enabled_services

    add_site(repo, "n7", _site_text("n7", "2025.1"))
    site = load_site(repo, "n7")
    spec = next(s for s in all_secrets(enabled_services(site)) if s.name == "neutron-secrets")
    keys = {k.key: k for k in spec.keys}
    assert keys["metadata-secret"].source == "metadata_secret"
    assert "metadata_proxy_shared_secret" in keys["neutron-ovn-metadata-agent.conf"].template
    assert "[nova]" in keys["neutron.conf"].template


def test_ovn_database_replicas_must_be_odd(repo: Path, kkc) -> None:
    """A RAFT cluster of 2 has no majority when one member fails: KKC186, at the key."""
    add_site(repo, "n8", _site_text("n8", "2025.1", "    ovnSbDb: {replicas: 2}\n"))
    result = kkc(repo, "check", "n8")
    assert result.exit_code == 2, result.output
    assert (
        "sites/n8/site.yaml:11:25: KKC186 services.neutron.ovnSbDb.replicas: must be one of "
        "1, 3, 5: a RAFT cluster needs an "
        "odd number of members (got 2)"
    ) in result.output


RAFT = "    ovnNbDb: {replicas: 3}\n    ovnSbDb: {replicas: 3}\n"
NB_MEMBERS = [f"ovn-nb-db-{i}.ovn-nb-db-headless.openstack.svc.cluster.local" for i in range(3)]
SB_MEMBERS = [f"ovn-sb-db-{i}.ovn-sb-db-headless.openstack.svc.cluster.local" for i in range(3)]
# the clients reach each member through a Service of its own (its stable address)
NB_ALL = ",".join(f"tcp:ovn-nb-db-{i}.openstack.svc.cluster.local:6641" for i in range(3))
SB_ALL = ",".join(f"tcp:ovn-sb-db-{i}.openstack.svc.cluster.local:6642" for i in range(3))


def test_ovn_raft_cluster_of_three(repo: Path) -> None:
    """3 replicas: a RAFT member start script (pod 0 creates, the others join by the
    headless Service's names, only without a database file), replicas and a
    PodDisruptionBudget per database, and every client gets all members."""
    tree = _tree(repo, "n9", "2025.1", RAFT)
    infra = _kustomization(tree, "infra")
    assert {"name": "ovn-nb-db", "count": 3} in infra["replicas"]
    assert {"name": "ovn-sb-db", "count": 3} in infra["replicas"]
    for db in ("nb", "sb"):
        pdb = load_stream(tree[f"stages/infra/pdb/ovn-{db}-db-poddisruptionbudget.yaml"].decode())
        assert pdb[0]["spec"]["maxUnavailable"] == 1
        cfg = json.loads(tree[f"stages/infra/config/ovn-{db}-db-kolla/config.json"])
        assert cfg["command"] == f"/usr/local/bin/kkc-ovn-{db}-db-start"
    script = tree["stages/infra/config/ovn-nb-db-kolla/kkc-ovn-nb-db-start"].decode()
    domain = "ovn-nb-db-headless.openstack.svc.cluster.local"
    assert 'if [ ! -e "$db" ]; then' in script
    assert (
        'ovsdb-tool create-cluster "$db" /usr/share/ovn/ovn-nb.ovsschema "tcp:$local_addr:6643"'
    ) in script
    assert f"for m in {' '.join(f'tcp:{h}:6643' for h in NB_MEMBERS)}; do" in script
    assert 'ovsdb-tool join-cluster "$db" OVN_Northbound "tcp:$local_addr:6643"' in script
    assert script.rstrip().endswith(
        "--ovn-nb-log=-vconsole:info "
        '--db-nb-cluster-local-addr="$local_addr" --db-nb-cluster-local-port=6643 '
        "--db-nb-cluster-local-proto=tcp"
    )
    assert f'local_addr="$name.{domain}"' in script
    patch = load_stream(tree["stages/infra/patches/ovn-nb-db-statefulset-neutron.yaml"].decode())
    hook = patch[0]["spec"]["template"]["spec"]["containers"][0]["lifecycle"]["postStart"]
    assert (
        "ovn-nbctl --no-leader-only --db=unix:/run/ovn/ovnnb_db.sock" in hook["exec"]["command"][2]
    )

    northd = json.loads(tree["stages/infra/config/ovn-northd-kolla/config.json"])["command"]
    assert f"--ovnnb-db={NB_ALL} --ovnsb-db={SB_ALL} " in northd
    ml2 = ini(tree["stages/services/config/neutron-server-kolla/ml2_conf.ini"])
    assert ml2.get("ovn", "ovn_nb_connection") == NB_ALL
    assert ml2.get("ovn", "ovn_sb_connection") == SB_ALL
    setup = tree[
        "stages/compute/config/ovn-controller-setup-kolla/kkc-ovn-controller-setup"
    ].decode()
    assert f"external_ids:ovn-remote={SB_ALL} " in setup


def test_ovn_raft_clients_reach_each_member_through_a_service_of_its_own(repo: Path) -> None:
    """neutron connects to addresses, resolved once when its pod starts (ovn-address);
    the members' pod addresses change on every restart, so after a rolling restart of a
    database's StatefulSet neutron would hold none of the cluster's. Each member has a
    ClusterIP Service that selects that one pod (the StatefulSet controller's pod-name
    label) on the client port: its address outlives the pod's."""
    tree = _tree(repo, "n12", "2025.1", RAFT)
    infra = _kustomization(tree, "infra")
    for db, port, component in (("nb", 6641, "ovnNbDb"), ("sb", 6642, "ovnSbDb")):
        for i in range(3):
            rel = f"objects/ovn-{db}-db-{i}-service.yaml"
            assert rel in infra["resources"]
            (svc,) = load_stream(tree[f"stages/infra/{rel}"].decode())
            assert svc["spec"] == {
                "type": "ClusterIP",
                "selector": {
                    "app.kubernetes.io/name": "neutron",
                    "app.kubernetes.io/component": component,
                    "statefulset.kubernetes.io/pod-name": f"ovn-{db}-db-{i}",
                },
                "ports": [
                    {"name": "ovsdb", "port": port, "targetPort": "ovsdb", "protocol": "TCP"}
                ],
            }
    standalone = _tree(repo, "n13", "2025.1")
    assert not [f for f in standalone if "objects/ovn-nb-db-0" in f]


def test_ovn_raft_cluster_builds_and_validates(repo: Path, kkc) -> None:
    add_site(repo, "n10", _site_text("n10", "2026.1", RAFT))
    result = kkc(repo, "build", "n10")
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("release", ["2025.1", "2026.1", "2026.2"])
def test_builds_and_validates(repo: Path, kkc, release: str) -> None:
    name = "nb" + release.replace(".", "")
    add_site(repo, name, _site_text(name, release))
    result = kkc(repo, "build", name)
    assert result.exit_code == 0, result.output


BASES = Path(__file__).resolve().parent.parent / "base" / "neutron"
OVN_BASES = [
    "services/neutron-server-deployment.yaml",
    "services/uwsgi/neutron-rpc-server-deployment.yaml",
    "services/uwsgi/neutron-periodic-workers-deployment.yaml",
    "services/uwsgi/neutron-ovn-maintenance-worker-deployment.yaml",
    "compute/neutron-ovn-metadata-agent-daemonset.yaml",
]


def test_ovn_connections_reach_neutron_as_addresses(
    repo: Path, tmp_path: Path, monkeypatch
) -> None:
    """python-ovs resolves no host name without the unbound module, which the Kolla
    images lack (make e2e: neutron-server got 'Connection refused' for
    tcp:ovn-nb-db.<ns>.svc:6641). Every neutron container that talks to the OVN
    databases gets, from its init container ovn-address, a neutron.conf.d drop-in with
    the Services' addresses, and its config.json copies it."""
    import socket

    old, new = _tree(repo, "n5", "2025.1"), _tree(repo, "n6", "2026.1")
    entry = {
        "source": "/var/lib/kolla/ovn-address/ovn-address.conf",
        "dest": "/etc/neutron/neutron.conf.d/60-kkc-ovn-address.conf",
        "owner": "neutron",
        "perm": "0600",
    }
    configs = [(old, "services", "neutron-server")] + [
        (new, stage, name)
        for stage, name in [
            ("services", "neutron-server"),
            ("services", "neutron-rpc-server"),
            ("services", "neutron-periodic-workers"),
            ("services", "neutron-ovn-maintenance-worker"),
            ("compute", "neutron-ovn-metadata-agent"),
        ]
    ]
    for tree, stage, name in configs:
        cfg = json.loads(tree[f"stages/{stage}/config/{name}-kolla/config.json"])
        assert cfg["config_files"][-1] == entry, name
        # oslo.config reads --config-file after its default config dirs: a command with
        # --config-file names the drop-in directory last, so that the drop-ins win
        if "--config-file" in cfg["command"]:
            assert cfg["command"].endswith(" --config-dir /etc/neutron/neutron.conf.d"), name

    resolved = {"ovn-nb-db.openstack.svc": "10.96.0.11", "ovn-sb-db.openstack.svc": "fd00::12"}

    def getaddrinfo(host, port, type=0):
        return [(socket.AF_INET, type, 6, "", (resolved[host], port))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    config_files = tmp_path / "config_files"
    config_files.mkdir()
    (config_files / "ml2_conf.ini").write_bytes(
        new["stages/services/config/neutron-server-kolla/ml2_conf.ini"]
    )
    (config_files / "config.json").write_text("{}")
    out = tmp_path / "ovn-address"
    out.mkdir()
    for base in OVN_BASES:
        pod = load_stream((BASES / base).read_text())[0]["spec"]["template"]["spec"]
        init = next(c for c in pod["initContainers"] if c["name"] == "ovn-address")
        main = pod["containers"][0]
        assert {"name": "ovn-address", "emptyDir": {}} in pod["volumes"]
        assert {
            "name": "ovn-address",
            "mountPath": "/var/lib/kolla/ovn-address",
            "readOnly": True,
        } in main["volumeMounts"]
        script = (
            init["command"][2]
            .replace("/var/lib/kolla/config_files", str(config_files))
            .replace("/var/lib/kolla/ovn-address", str(out))
        )
        exec(compile(script, base, "exec"), {})
        assert (out / "ovn-address.conf").read_text() == (
            "[ovn]\n"
            "ovn_nb_connection = tcp:10.96.0.11:6641\n"
            "ovn_sb_connection = tcp:[fd00::12]:6642\n"
        ), base


def test_network_policy_lets_raft_members_reach_each_other_only_on_their_raft_port(
    repo: Path,
) -> None:
    """With default-deny ingress, a RAFT member that cannot reach the others on 6643/6644
    never joins: each database's policy admits its own pods on the RAFT port, besides its
    clients on the client port. A standalone database keeps its single rule."""
    overlay = 'overlays: [network-policy]\nnetworkPolicy:\n  nodeCIDRs: ["10.20.0.0/22"]\n'
    for name, extra, raft in (("n10", RAFT, True), ("n11", "", False)):
        tree = _tree(repo, name, "2025.1", extra + overlay)
        for db, client, peer in (("nb", 6641, 6643), ("sb", 6642, 6644)):
            obj = f"stages/infra/objects/ovn-{db}-db-networkpolicy.yaml"
            spec = load_stream(tree[obj].decode())[0]["spec"]
            ports = [[p["port"] for p in r["ports"]] for r in spec["ingress"]]
            assert ports == ([[client], [peer]] if raft else [[client]]), (name, db, ports)
            if raft:
                assert spec["ingress"][1]["from"] == [{"podSelector": spec["podSelector"]}]


MANAGE = (
    "--config-file /etc/neutron/neutron.conf --config-file /etc/neutron/plugins/ml2/ml2_conf.ini"
)


@pytest.mark.parametrize(
    ("current", "current_rc", "want", "want_rc"),
    [
        ("Running current for neutron ...\n  OK", 0, "upgrade heads", 0),
        ("Running current for neutron ...\n5c85685d616d (head)\nba859d649675 (head)\n  OK",
         0, "upgrade --expand", 0),
        ("", 1, None, 1),
    ],
)  # fmt: skip
def test_db_sync_gives_a_new_database_both_branches_and_expands_an_existing_one(
    repo: Path, tmp_path: Path, current: str, current_rc: int, want: str | None, want_rc: int
) -> None:
    """On a new database the new code needs every contract migration of earlier releases
    (make e2e: "Unknown column" with expand alone), so both branches; an earlier release's
    database gets the expand branch only, before the roll."""
    script = _tree(repo, "n12", "2025.1")["stages/db/config/neutron-db-sync-kolla/kkc-db-sync.sh"]
    calls = tmp_path / "calls"
    code = run_script(
        script,
        tmp_path,
        {
            "neutron-db-manage": f'echo "$*" >> {calls}\n'
            f'case "$*" in *" current") printf "{current}\\n"; exit {current_rc};; esac'
        },
    )
    assert code.returncode == want_rc, code
    done = calls.read_text().splitlines()
    assert done[0] == f"{MANAGE} current"
    assert done[1:] == ([f"{MANAGE} {want}"] if want else [])
