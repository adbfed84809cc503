"""The e2e harness's RAFT pieces that run without root (e2e/kkc_e2e/raft.py): which
databases run as clusters, the members' own addresses in every container's /etc/hosts,
reading ``cluster/status`` and the clients' connections."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "e2e"))

from kkc_e2e import bringup, pods, raft, render  # noqa: E402

NS = {"kind": "Namespace", "metadata": {"name": "openstack"}}


def _sts(name: str, replicas: int) -> dict:
    return {
        "kind": "StatefulSet",
        "metadata": {"name": name},
        "spec": {"replicas": replicas, "serviceName": f"{name}-headless", "template": {}},
    }


def _site(tmp_path: Path, *objects: dict) -> render.Site:
    return render.Site("site-a", "2025.1", tmp_path, [NS, *objects], [])


def test_only_an_ovn_database_of_more_than_one_replica_runs_as_a_cluster():
    assert raft.clustered(_sts("ovn-nb-db", 3)) and raft.clustered(_sts("ovn-sb-db", 5))
    assert not raft.clustered(_sts("ovn-nb-db", 1))  # standalone: the infra's one pod
    assert not raft.clustered(_sts("memcached", 3))  # the harness runs one pod of it
    assert raft.pod_names(_sts("ovn-sb-db", 3)) == ["ovn-sb-db-0", "ovn-sb-db-1", "ovn-sb-db-2"]


def test_every_container_resolves_each_member_to_its_own_address(tmp_path):
    """The rendered members find each other by their stable DNS names: in the hosts file
    of every container each member's names go to its address on the pods' bridge, a
    Service of one member (the clients') to an address of its own, the database's other
    Services to the first member, every other name to 127.0.0.1, and no name is listed
    twice (a resolver would answer with both)."""
    nb, sb = _sts("ovn-nb-db", 3), _sts("ovn-sb-db", 1)
    services = [
        {"kind": "Service", "metadata": {"name": n}, "spec": {"selector": {"app": n}}}
        for n in ("ovn-sb-db", "rabbitmq")
    ]
    member = {
        "kind": "Service",
        "metadata": {"name": "ovn-nb-db-1"},
        "spec": {"selector": {"app": "x", raft.POD_NAME: "ovn-nb-db-1"}},
    }
    site = _site(tmp_path, nb, sb, *services, member)
    network = raft.Network()
    own = raft.host_addresses(site, network)
    fqdn = "ovn-nb-db-{}.ovn-nb-db-headless.openstack.svc.cluster.local"
    assert [own[fqdn.format(i)] for i in range(3)] == ["10.244.0.10", "10.244.0.11", "10.244.0.12"]
    assert own["ovn-nb-db-1.ovn-nb-db-headless"] == own["ovn-nb-db-1.ovn-nb-db-headless.openstack"]
    assert (
        own["ovn-nb-db.openstack.svc"] == own["ovn-nb-db-headless.openstack.svc"] == "10.244.0.10"
    )
    assert own["ovn-nb-db-1.openstack.svc.cluster.local"] == own["ovn-nb-db-1"] == "10.96.0.10"
    assert raft.member_services(site, "ovn-nb-db-1") == ["ovn-nb-db-1"]
    assert raft.member_services(site, "ovn-nb-db-0") == []
    assert not [h for h in own if h.startswith("ovn-sb-db")]  # standalone: loopback
    assert raft.host_addresses(site, network) == own  # stable for the run (a restart)
    other = _site(tmp_path, nb)
    other.name = "site-b"
    assert raft.host_addresses(other, network)[fqdn.format(0)] == "10.244.0.13"

    sc = tmp_path / "kolla" / "docker" / "base" / "set_configs.py"
    env = bringup.new_env(site, tmp_path, tmp_path, sc, None)
    lines = [line.split() for line in env.hosts.splitlines()]
    names = [n for _, *hosts in lines for n in hosts]
    assert len(names) == len(set(names))
    address = {n: ip for ip, *hosts in lines for n in hosts}
    assert address[fqdn.format(2)] == "10.244.0.12"
    assert address["ovn-sb-db.openstack.svc"] == address["rabbitmq"] == "127.0.0.1"


def test_a_member_has_its_pods_host_name_address_and_own_hosts_line(tmp_path):
    """What the rendered start script reads: $(hostname) is the pod's name (pod 0
    creates the cluster), status.podIP its address, and its hosts file has its own
    names as the kubelet writes them."""
    env = pods.Env(tmp_path, tmp_path, tmp_path, "127.0.0.1 localhost\n", {}, None, {}, "ns")
    net = pods.PodNet("/proc/1/ns/net", "10.244.0.11", "ovn-nb-db-1", "ovn-nb-db-1.h.ns.svc")
    spec = {"env": [{"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}]}
    ctr = pods.Container(env, {}, spec, "ovn-nb-db-1", tmp_path, net)
    assert ctr.hosts() == "127.0.0.1 localhost\n10.244.0.11 ovn-nb-db-1.h.ns.svc ovn-nb-db-1\n"
    assert ctr.environment()["IP"] == "10.244.0.11"
    plain = pods.Container(env, {}, spec, "rabbitmq", tmp_path)
    assert plain.hosts() == env.hosts and plain.environment()["IP"] == "127.0.0.1"


# ovs-appctl cluster/status of a follower, as OVN 23.03's ovsdb-server printed it
FOLLOWER = """79d1
Name: OVN_Northbound
Cluster ID: 772f (772f8f40-9d7f-400d-9e90-25696ee2b678)
Server ID: 79d1 (79d148f4-6e50-4e1c-9b95-09e7504f1803)
Address: tcp:ovn-nb-db-1.ovn-nb-db-headless.openstack.svc.cluster.local:6643
Status: cluster member
Role: follower
Term: 1
Leader: 52e2
Vote: unknown

Election timer: 1000
Log: [2, 9]
Connections: ->0000 <-52e2 <-475f ->475f
Servers:
    475f (475f at tcp:ovn-nb-db-2.ovn-nb-db-headless.openstack.svc.cluster.local:6643)
    79d1 (79d1 at tcp:ovn-nb-db-1.ovn-nb-db-headless.openstack.svc.cluster.local:6643) (self)
    52e2 (52e2 at tcp:ovn-nb-db-0.ovn-nb-db-headless.openstack.svc.cluster.local:6643) last msg
"""


def _member(server: str, role: str, leader: str, servers=("475f", "79d1", "52e2")) -> dict:
    return {
        "cluster_id": "772f (772f8f40)",
        "server_id": f"{server} ({server}0000)",
        "status": "cluster member",
        "role": role,
        "term": "1",
        "leader": leader,
        "servers": list(servers),
    }


def test_cluster_status_is_read_and_a_cluster_agrees_on_one_leader():
    got = raft.parse_status(FOLLOWER)
    assert got == _member("79d1", "follower", "52e2") | {
        "cluster_id": "772f (772f8f40-9d7f-400d-9e90-25696ee2b678)",
        "server_id": "79d1 (79d148f4-6e50-4e1c-9b95-09e7504f1803)",
    }
    three = {
        "ovn-nb-db-0": _member("52e2", "leader", "self"),
        "ovn-nb-db-1": _member("79d1", "follower", "52e2"),
        "ovn-nb-db-2": _member("475f", "follower", "52e2"),
    }
    assert raft.agreed(three, 3) == "ovn-nb-db-0"
    assert raft.agreed({k: v for k, v in three.items() if k != "ovn-nb-db-2"}, 3) == "ovn-nb-db-0"
    assert raft.agreed(three, 5) is None  # not every member joined yet
    for pod, change in (
        ("ovn-nb-db-1", {"role": "leader", "leader": "self"}),  # two leaders
        ("ovn-nb-db-2", {"leader": "79d1"}),  # a follower of another leader
        ("ovn-nb-db-2", {"status": "joining cluster"}),
        ("ovn-nb-db-2", {"cluster_id": "9999 (9999)"}),  # another cluster
    ):
        assert raft.agreed({**three, pod: three[pod] | change}, 3) is None, change
    assert raft.agreed({**three, "ovn-nb-db-2": None}, 3) is None  # no answer
    no_leader = {k: v | {"role": "follower", "leader": "unknown"} for k, v in three.items()}
    assert raft.agreed(no_leader, 3) is None


def test_peers_are_the_addresses_a_containers_processes_are_connected_to(tmp_path):
    """Which member ovn-northd or neutron-server talks to: the remote address and port of
    each established connection its processes hold (/proc/net/tcp, little-endian hex)."""
    proc = tmp_path / "proc"
    (proc / "net").mkdir(parents=True)
    fd = proc / "10" / "fd"
    fd.mkdir(parents=True)
    for i, inode in enumerate(("111", "222", "333")):
        (fd / str(i)).symlink_to(f"socket:[{inode}]")
    head = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid\n"
    row = "   0: 0100007F:9C40 {rem} {st} 00000000:00000000 00:00000000 00000000 0 0 {inode} 1\n"
    (proc / "net" / "tcp").write_text(
        head
        + row.format(rem="0B00F40A:19F9", st="01", inode="111")  # 10.244.0.11:6649
        + row.format(rem="0C00F40A:19FA", st="06", inode="222")  # TIME_WAIT: no
        + row.format(rem="0D00F40A:19FA", st="01", inode="999")  # another process's
        + row.format(rem="0100007F:1628", st="01", inode="333")  # 127.0.0.1:5672
    )
    assert raft.peers([10], proc) == {("10.244.0.11", 6649), ("127.0.0.1", 5672)}
