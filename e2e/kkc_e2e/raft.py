"""The OVN databases as RAFT clusters (``services.neutron.ovnNbDb/ovnSbDb.replicas`` 3
or 5): every member runs as a pod of its own, with the rendered start script and hooks
unchanged, and the checks that the clusters form and keep serving when a member dies.

All members bind the same ports (6641/6642 for clients, on 0.0.0.0 as the rendered
postStart hook sets it, and 6643/6644 for RAFT), so each member pod gets a network of its
own, as a pod in a cluster does: a network namespace with one address on a bridge of the
harness's namespace (``kkc-pods``, 10.244.0.0/24), where the other containers run. Its
host name is its pod's name (``ovn-nb-db-1``: the script creates the cluster on pod 0
and joins it elsewhere), and the private /etc/hosts of every container sends each
member's stable DNS name (``ovn-nb-db-1.ovn-nb-db-headless.<ns>.svc.cluster.local`` and
its shorter forms) to that address. A Service that selects one member (kkc's
``ovn-nb-db-1``, which the clients use) has an address of its own (10.96.0.0/24, routed
to the bridge), which the member's namespace holds as kube-proxy would deliver it there.
The pods start one by one (``OrderedReady``: the next one when this one listens)."""

from __future__ import annotations

import copy
import re
import subprocess
import time
from pathlib import Path

from . import apis, checks
from .pods import Container, PodError, PodNet, _signal, session, wait_port

# StatefulSet -> (database, schema name, client port)
CLUSTERED = {
    "ovn-nb-db": ("nb", "OVN_Northbound", 6641),
    "ovn-sb-db": ("sb", "OVN_Southbound", 6642),
}
BRIDGE = "kkc-pods"
SUBNET = "10.244.0"  # the pods' network: the bridge is .1, the pods from .10 on
SERVICES = "10.96.0"  # the addresses of the Services of one member, from .10 on
FIRST = 10
POD_NAME = "statefulset.kubernetes.io/pod-name"
WAIT = 120.0  # seconds for a cluster to form, elect a leader or take a member back
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def clustered(obj: dict) -> bool:
    """Whether OBJ is an OVN database the harness runs as a RAFT cluster (more than one
    replica: one replica is a standalone server, started as the rest of the infra)."""
    return (
        obj["kind"] == "StatefulSet"
        and obj["metadata"]["name"] in CLUSTERED
        and int(obj["spec"].get("replicas", 1)) > 1
    )


def pod_names(obj: dict) -> list[str]:
    return [f"{obj['metadata']['name']}-{i}" for i in range(int(obj["spec"]["replicas"]))]


def _names(short: str, ns: str) -> list[str]:
    """The names a pod resolves for SHORT (as render.hostnames gives every Service)."""
    return [short, f"{short}.{ns}", f"{short}.{ns}.svc", f"{short}.{ns}.svc.cluster.local"]


class Network:
    """The pods' network of one harness run: an address per (site, pod), kept for the
    run (a restarted member comes back with the same address and namespace), and the
    namespaces, made when a pod first starts."""

    def __init__(self) -> None:
        self.addresses: dict[tuple[str, str], str] = {}
        self.services: dict[tuple[str, str], str] = {}
        self.pods: dict[str, PodNet] = {}  # address -> the pod's network
        self.holders: list[subprocess.Popen] = []

    def address(self, site: str, pod: str) -> str:
        key = (site, pod)
        if key not in self.addresses:
            self.addresses[key] = f"{SUBNET}.{FIRST + len(self.addresses)}"
        return self.addresses[key]

    def service_address(self, site: str, service: str) -> str:
        key = (site, service)
        if key not in self.services:
            self.services[key] = f"{SERVICES}.{FIRST + len(self.services)}"
        return self.services[key]

    def pod(self, site: str, pod: str, fqdn: str, services: list[str]) -> PodNet:
        """The network of POD: a namespace (held by a process that sleeps) with a veth on
        the bridge, the pod's address and those of the SERVICES that select it alone."""
        ip = self.address(site, pod)
        if ip in self.pods:
            return self.pods[ip]
        if not self.holders:
            _ip("link", "add", BRIDGE, "type", "bridge")
            _ip("addr", "add", f"{SUBNET}.1/24", "dev", BRIDGE)
            _ip("link", "set", BRIDGE, "up")
            _ip("route", "add", f"{SERVICES}.0/24", "dev", BRIDGE)
        # the shell speaks once unshare has made the namespace, then becomes the holder
        holder = subprocess.Popen(
            ["unshare", "--net", "sh", "-c", "echo ready; exec sleep infinity"],
            stdout=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
        )
        self.holders.append(holder)
        if holder.stdout is None or holder.stdout.readline() != b"ready\n":
            raise PodError(f"unshare --net for pod {pod} did not start")
        netns = f"/proc/{holder.pid}/ns/net"
        veth = f"kkcv{len(self.holders)}"
        _ip("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", str(holder.pid))
        _ip("link", "set", veth, "master", BRIDGE, "up")
        for args in (
            ("link", "set", "lo", "up"),
            ("addr", "add", f"{ip}/24", "dev", "eth0"),
            ("link", "set", "eth0", "up"),
            ("route", "add", "default", "via", f"{SUBNET}.1"),
            *(
                ("addr", "add", f"{self.service_address(site, s)}/32", "dev", "eth0")
                for s in services
            ),
        ):
            _ip(*args, netns=netns)
        self.pods[ip] = PodNet(netns, ip, pod, fqdn)
        return self.pods[ip]


NETWORK = Network()


def _ip(*args: str, netns: str | None = None) -> None:
    argv = (["nsenter", f"--net={netns}"] if netns else []) + ["ip", *args]
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode != 0:
        raise PodError(f"{' '.join(argv)}: {done.stderr.strip()}")


def member_services(site, pod: str) -> list[str]:
    """The Services of SITE that select the one pod POD (by its pod-name label)."""
    return [
        s["metadata"]["name"]
        for s in site.of_kind("Service")
        if (s["spec"].get("selector") or {}).get(POD_NAME) == pod
    ]


def host_addresses(site, network: Network = NETWORK) -> dict[str, str]:
    """Host name -> address for the members of SITE's RAFT clusters: each member's
    stable names its own address, a Service of one member its own address, the
    database's other Services the first member's (a Service sends a client to one of
    its pods)."""
    out: dict[str, str] = {}
    for sts in site.of_kind("StatefulSet"):
        if not clustered(sts):
            continue
        headless = sts["spec"]["serviceName"]
        for i, pod in enumerate(pod_names(sts)):
            ip = network.address(site.name, pod)
            for name in _names(f"{pod}.{headless}", site.namespace):
                out[name] = ip
            if i == 0:
                for svc in (sts["metadata"]["name"], headless):
                    for name in _names(svc, site.namespace):
                        out[name] = ip
            for svc in member_services(site, pod):
                for name in _names(svc, site.namespace):
                    out[name] = network.service_address(site.name, svc)
    return out


def client_addresses(run, ctr: Container) -> list[tuple[str, str]]:
    """(host name, address) by which the clients reach the member CTR: its Services of
    one pod, else its stable name (kkc before those Services)."""
    services = member_services(run.site, ctr.tag)
    if not services:
        return [(ctr.net.fqdn, ctr.net.ip)]
    ns = run.site.namespace
    return [
        (f"{s}.{ns}.svc.cluster.local", NETWORK.service_address(run.site.name, s)) for s in services
    ]


# -- the members ---------------------------------------------------------------------
def start_member(run, obj: dict, ordinal: int) -> Container:
    """Pod ORDINAL of the database OBJ, on its claim, in its network: the container from
    its config.json (the rendered start script) and its postStart hook."""
    name = obj["metadata"]["name"]
    spec, poddir = run.pod(obj, ordinal)
    main = next(c for c in spec["containers"] if c["name"] == name)
    pod = f"{name}-{ordinal}"
    fqdn = f"{pod}.{obj['spec']['serviceName']}.{run.site.namespace}.svc.cluster.local"
    net = NETWORK.pod(run.site.name, pod, fqdn, member_services(run.site, pod))
    ctr = Container(run.env, spec, main, pod, poddir, net)
    ctr.start()
    run.running.append(ctr)
    hook = ctr.post_start()
    if hook not in (None, 0):
        run.record(f"infra {pod} postStart hook", False, f"exited with {hook}")
    return ctr


def start_members(run, obj: dict) -> None:
    """Every member of OBJ in order (OrderedReady: the next pod once this one listens),
    then the check that they formed one cluster."""
    name = obj["metadata"]["name"]
    port = CLUSTERED[name][2]
    members: list[Container] = []
    run.workloads[name] = (copy.deepcopy(obj["spec"]["template"]), members)
    total = len(pod_names(obj))
    for i in range(total):
        try:
            ctr = start_member(run, obj, i)
        except PodError as exc:  # its network could not be made
            run.record(f"infra {name}-{i} (RAFT member {i + 1} of {total})", False, str(exc))
            return
        members.append(ctr)
        ok = wait_port(port, 300, ctr, ctr.net.ip)
        run.record(
            f"infra {ctr.tag} (RAFT member {i + 1} of {total} at {ctr.net.ip}: "
            f"{ctr.kolla_command()})",
            ok,
            "" if ok else f"not listening on {port}; log {ctr.log}:\n{ctr.tail()}",
        )
        if not ok:
            return
    formed(run, name, members)


def exec_in(ctr: Container, argv: list[str], timeout: float = 60) -> tuple[int, str]:
    """ARGV in CTR's pod (``kubectl exec``): its volumes, network and host name."""
    spec = {**ctr.spec, "command": argv, "args": [], "lifecycle": {}}
    one = Container(ctr.env, ctr.pod, spec, f"{ctr.tag}-exec", ctr.poddir, ctr.net)
    try:
        code = one.run(timeout)
    except PodError as exc:
        return -1, str(exc)
    return code, one.log.read_text(errors="replace")


def parse_status(text: str) -> dict:
    """``ovs-appctl cluster/status`` of one member: status, role, term, leader, cluster
    id and the server ids of the members it knows."""
    out: dict = {"servers": []}
    in_servers = False
    for line in text.splitlines():
        if in_servers and line[:1].isspace() and line.strip():
            out["servers"].append(line.split()[0])
            continue
        in_servers = line.startswith("Servers:")
        key, sep, value = line.partition(":")
        if sep and key in ("Cluster ID", "Server ID", "Status", "Role", "Term", "Leader"):
            out[key.lower().replace(" ", "_")] = value.strip()
    return out


def status(ctr: Container) -> dict | None:
    db, schema, _ = CLUSTERED[ctr.tag.rsplit("-", 1)[0]]
    code, text = exec_in(
        ctr, ["ovn-appctl", "-t", f"/run/ovn/ovn{db}_db.ctl", "cluster/status", schema]
    )
    return parse_status(text) if code == 0 else None


def agreed(statuses: dict[str, dict | None], size: int) -> str | None:
    """The pod that leads STATUSES (pod -> its cluster/status), when every one of them is
    a member of the same cluster of SIZE servers, one of them is the leader and the others
    follow it; else None."""
    if not statuses or any(s is None for s in statuses.values()):
        return None
    if any(
        s.get("status") != "cluster member" or len(s["servers"]) != size for s in statuses.values()
    ):
        return None
    if len({s.get("cluster_id") for s in statuses.values()}) != 1:
        return None
    leaders = [pod for pod, s in statuses.items() if s.get("role") == "leader"]
    if len(leaders) != 1:
        return None
    lead = statuses[leaders[0]]["server_id"].split()[0]
    followers = [s for pod, s in statuses.items() if pod != leaders[0]]
    if any(s.get("leader", "").split()[0] != lead for s in followers if s.get("leader")):
        return None
    return leaders[0]


def wait_leader(members: list[Container], size: int) -> tuple[str | None, dict]:
    """The leader the running MEMBERS agree on (up to WAIT seconds) and their statuses."""
    deadline = time.monotonic() + WAIT
    while True:
        statuses = {c.tag: status(c) for c in members}
        leader = agreed(statuses, size)
        if leader or time.monotonic() > deadline:
            return leader, statuses
        time.sleep(3)


def _shown(statuses: dict[str, dict | None]) -> str:
    return "; ".join(
        f"{pod}: {s.get('status')}, {s.get('role')}, term {s.get('term')}, "
        f"{len(s['servers'])} servers"
        if s
        else f"{pod}: no cluster/status"
        for pod, s in statuses.items()
    )


def formed(run, name: str, members: list[Container]) -> None:
    leader, statuses = wait_leader(members, len(members))
    run.record(
        f"raft {name}: {len(members)} members formed one cluster"
        + (f" (leader {leader}, term {statuses[leader]['term']})" if leader else ""),
        leader is not None,
        "" if leader else _shown(statuses),
    )


# -- clients -------------------------------------------------------------------------
def peers(pids: list[int], proc: Path = Path("/proc")) -> set[tuple[str, int]]:
    """The (address, port) of every established IPv4 TCP connection that the processes
    PIDS hold (their socket inodes in /proc/net/tcp)."""
    inodes = apis.socket_inodes(pids, proc)
    out = set()
    try:
        lines = (proc / "net" / "tcp").read_text().splitlines()[1:]
    except OSError:
        return out
    for line in lines:
        f = line.split()
        if len(f) > 9 and f[3] == "01" and f[9] in inodes:
            addr, port = f[2].split(":")
            ip = ".".join(str(b) for b in reversed(bytes.fromhex(addr)))
            out.add((ip, int(port, 16)))
    return out


def connected_to(run, ctr: Container, members: list[Container], port: int) -> list[str]:
    """The MEMBERS (pods) that CTR holds a connection to on PORT (to the member's own
    address or to a Service's of it alone)."""
    remote = peers(apis.process_tree(ctr.proc.pid)) if ctr.proc else set()
    return [
        m.tag
        for m in members
        if any((ip, port) in remote for ip in {m.net.ip, *(a for _, a in client_addresses(run, m))})
    ]


def _client_strings(run, sets: dict[str, list[Container]], northd, server) -> None:
    """ovn-northd's --ovnnb-db/--ovnsb-db (its config.json) name every member by the name
    of its own Service; neutron-server's [ovn] connections (the drop-in its ovn-address
    init container wrote) are those Services' addresses, not the pods'."""
    command = (northd.kolla_command() or "") if northd else ""
    options = dict(re.findall(r"--(ovn[ns]b-db)=(\S+)", command))
    drop_in = ""
    if server is not None:
        try:
            drop_in = (server.volume_dir("ovn-address") / "ovn-address.conf").read_text()
        except (OSError, StopIteration):
            drop_in = ""
    conns = dict(re.findall(r"(?m)^(ovn_[ns]b_connection) = (\S+)", drop_in))
    for name, members in sets.items():
        db, _, port = CLUSTERED[name]
        reach = [client_addresses(run, m)[0] for m in members]
        by_name = ",".join(f"tcp:{host}:{port}" for host, _ in reach)
        by_ip = ",".join(f"tcp:{ip}:{port}" for _, ip in reach)
        got = (options.get(f"ovn{db}-db"), conns.get(f"ovn_{db}_connection"))
        run.record(
            f"raft {name}: ovn-northd's --ovn{db}-db names every member's Service; "
            f"neutron-server's [ovn] ovn_{db}_connection is their addresses",
            got == (by_name, by_ip),
            f"{by_ip}"
            if got == (by_name, by_ip)
            else f"ovn-northd {got[0]}; neutron-server {got[1]}",
        )


def _clients_connected(run, sets, clients: dict[str, Container], when: str) -> None:
    """Each client (ovn-northd, neutron-server) holds a connection to a running member of
    each database (up to WAIT seconds: a client whose member died reconnects)."""
    for name, members in sets.items():
        port = CLUSTERED[name][2]
        alive = [m for m in members if m.alive()]
        for client, ctr in clients.items():
            deadline = time.monotonic() + WAIT
            while (
                not (found := connected_to(run, ctr, alive, port)) and time.monotonic() < deadline
            ):
                time.sleep(3)
            run.record(
                f"raft {name}: {client} connected to a member {when}",
                bool(found),
                f"to {', '.join(found)}"
                if found
                else f"no connection to {port} of {[m.tag for m in alive]}",
            )


# -- the failover --------------------------------------------------------------------
def kill(ctr: Container) -> None:
    """SIGKILL to every process of the member (a crash: no clean shutdown)."""
    if ctr.proc is None:
        return
    _signal(ctr.proc.pid, 9)
    ctr.proc.wait(30)
    for _ in range(50):
        if not session(ctr.proc.pid):
            break
        time.sleep(0.2)


def _kill_leader(run, name: str, members: list[Container]) -> Container | None:
    leader, statuses = wait_leader(members, len(members))
    if leader is None:
        run.record(f"raft {name}: a leader to kill", False, _shown(statuses))
        return None
    dead = next(m for m in members if m.tag == leader)
    term = int(statuses[leader]["term"])
    kill(dead)
    if dead in run.running:
        run.running.remove(dead)
    left = [m for m in members if m is not dead]
    new, statuses = wait_leader(left, len(members))
    ok = new is not None and int(statuses[new]["term"]) > term
    run.record(
        f"raft {name}: leader {leader} killed (SIGKILL); the {len(left)} of {len(members)} "
        "left elected a new leader",
        ok,
        f"{new}, term {statuses[new]['term']} (was {term})" if ok else _shown(statuses),
    )
    return dead


def _network(run, server: Container) -> str:
    """A network and subnet through neutron-server (ML2/OVN); its id."""
    tok, body = apis.admin(run)
    url = checks.endpoint(body, "network").rstrip("/")
    net = checks.call(
        "POST", f"{url}/v2.0/networks", tok, {"network": {"name": "kkc-e2e-raft"}}, expect=(201,)
    )["network"]
    subnet = {"network_id": net["id"], "ip_version": 4, "cidr": "198.51.100.0/24"}
    checks.call("POST", f"{url}/v2.0/subnets", tok, {"subnet": subnet}, expect=(201,))
    return net["id"]


# what neutron's network is in each database: its Logical_Switch, and the
# Datapath_Binding ovn-northd made of it
FIND = {
    "nb": ("ovn-nbctl", "Logical_Switch", "name"),
    "sb": ("ovn-sbctl", "Datapath_Binding", "external_ids:name"),
}


def has_network(ctr: Container, net_id: str) -> bool:
    """Whether the member CTR's own copy of its database holds neutron's network."""
    db = CLUSTERED[ctr.tag.rsplit("-", 1)[0]][0]
    tool, table, column = FIND[db]
    argv = [
        tool,
        "--no-leader-only",
        f"--db=unix:/run/ovn/ovn{db}_db.sock",
        "--bare",
        "--columns=_uuid",
        "find",
        table,
        f"{column}=neutron-{net_id}",
    ]
    code, text = exec_in(ctr, argv)
    return code == 0 and bool(UUID.search(text))


def wait_network(members: list[Container], net_id: str) -> list[str]:
    """The MEMBERS whose copy holds the network (up to WAIT seconds for all of them)."""
    deadline = time.monotonic() + WAIT
    while True:
        have = [m.tag for m in members if has_network(m, net_id)]
        if len(have) == len(members) or time.monotonic() > deadline:
            return have
        time.sleep(3)


def _rejoin(run, name: str, members: list[Container], dead: Container, net_id: str | None):
    """The killed member again, on its data and with its address: it rejoins and its
    copy catches up (the network created while it was down)."""
    obj = next(o for o in run.site.of_kind("StatefulSet") if o["metadata"]["name"] == name)
    ordinal = members.index(dead)
    port = CLUSTERED[name][2]
    ctr = start_member(run, obj, ordinal)
    members[ordinal] = ctr
    listening = wait_port(port, 300, ctr, ctr.net.ip)
    leader, statuses = wait_leader(members, len(members)) if listening else (None, {})
    caught_up = bool(net_id) and leader is not None and bool(wait_network([ctr], net_id))
    ok = listening and leader is not None and (caught_up or not net_id)
    run.record(
        f"raft {name}: {ctr.tag} restarted on its data rejoined the cluster and caught up",
        ok,
        (f"leader {leader}; its copy has network {net_id}" if net_id else f"leader {leader}")
        if ok
        else (_shown(statuses) if listening else f"not listening; log {ctr.log}:\n{ctr.tail()}"),
    )


def failover_phase(run) -> None:
    """With the site up: the clients' connection strings and connections; then the
    leader of each database killed, a new leader elected, ovn-northd and neutron-server
    reconnected, a network created through neutron and seen by ovn-northd in the SB;
    then the killed members restarted, rejoining and catching up."""
    sets = {
        n: run.workloads[n][1]
        for n in CLUSTERED
        if n in run.workloads and len(run.workloads[n][1]) > 1
    }
    if not sets:
        return
    clients = {
        n: run.workloads[n][1][0]
        for n in ("ovn-northd", "neutron-server")
        if run.workloads.get(n) and run.workloads[n][1] and run.workloads[n][1][0].alive()
    }
    _client_strings(run, sets, clients.get("ovn-northd"), clients.get("neutron-server"))
    _clients_connected(run, sets, clients, "(all members up)")
    dead = {name: _kill_leader(run, name, members) for name, members in sets.items()}
    _clients_connected(run, sets, clients, "after its leader was killed")
    net_id = None
    if "neutron-server" in clients:
        try:
            net_id = _network(run, clients["neutron-server"])
        except checks.CheckError as exc:
            run.record(
                "raft: neutron-server creates a network with one member of each database killed",
                False,
                str(exc),
            )
        if net_id:
            alive = {n: [m for m in ms if m.alive()] for n, ms in sets.items()}
            have = {n: wait_network(ms, net_id) for n, ms in alive.items()}
            ok = all(len(have[n]) == len(alive[n]) for n in alive)
            run.record(
                "raft: neutron-server creates a network and subnet with one member of each "
                "database killed; it is in the NB (Logical_Switch) and ovn-northd put it "
                "into the SB (Datapath_Binding) of every running member",
                ok,
                f"network {net_id}: "
                + "; ".join(f"{n} {', '.join(h) or 'none'}" for n, h in have.items()),
            )
    for name, ctr in dead.items():
        if ctr is not None:
            _rejoin(run, name, sets[name], ctr, net_id)
