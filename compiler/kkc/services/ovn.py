"""OVN and Open vSwitch for neutron's ML2/OVN driver: the OVN databases and ovn-northd
(stage infra) and, on every node that hosts instances or gateways, Open vSwitch and
ovn-controller (stage compute).

These are not services of their own: they exist only for neutron and are enabled by
``services.neutron.enabled`` (one switch, one place for their site options:
``services.neutron.*``). :func:`kkc.services.neutron.neutron` adds the workloads and
configs built here to its output; their static YAML lives in base/ovn/ and
base/openvswitch/, which base/neutron/infra/ and base/neutron/compute/ include.

Commands follow kolla-ansible's ovn-db, ovn-controller and openvswitch roles, with two
deliberate differences:

- With one replica (``services.neutron.ovnNbDb/ovnSbDb.replicas: 1``, the default) the
  OVN databases run *standalone*, not as a one-member RAFT cluster: kolla-ansible
  passes ``--db-nb-cluster-local-addr=<host IP>``, which a RAFT database records at
  creation; a pod's IP changes on every restart, so the recorded address would be
  wrong. With 3 or 5 replicas (KKC186 refuses other counts) each database is a RAFT
  cluster whose members are addressed by the stable DNS names of the StatefulSet's
  headless Service (``ovn-nb-db-<i>.ovn-nb-db-headless.<ns>.svc.cluster.local``, RAFT
  port 6643, 6644 for SB): pod 0 creates the cluster (``ovsdb-tool create-cluster``),
  the others join it (``ovsdb-tool join-cluster`` with every other member as remote),
  in both cases only when the database file does not exist yet (a restart keeps it),
  then ``ovn-ctl run_nb_ovsdb --db-nb-cluster-local-addr=...`` runs the server as
  kolla-ansible's ovn-db role does. Clients (ovn-northd, neutron, ovn-controller) get
  every member, comma-separated, each through a Service of its own
  (``ovn-nb-db-<i>.<ns>.svc.cluster.local``, selecting the pod by its
  ``statefulset.kubernetes.io/pod-name``): neutron connects to addresses (its init
  container ovn-address resolves the names once, as python-ovs cannot), and a
  Service's address outlives the pod's, which changes on every restart. The TCP
  listener is set exactly as kolla-ansible's bootstrap-db.yml does (``ovn-nbctl
  --inactivity-probe=60000 set-connection ptcp:6641:0.0.0.0``), from the container's
  postStart hook (see base/ovn/infra/; a cluster member runs it with
  ``--no-leader-only``, on any member, as the setting is replicated).
- Daemons log to the console (kubectl logs) as well as to their kolla log file.
"""

from __future__ import annotations

import shlex

from ..kolla import KollaConfig
from ..model import Site
from .common import ConfigFile, ServiceConfig, Workload, header, permission

NB_PORT = 6641
SB_PORT = 6642
OVSDB_PORT = 6640  # the node's Open vSwitch database, on 127.0.0.1 (host network)
LOG_DIR = "/var/log/kolla/openvswitch"
# kolla-ansible's ovn-db / ovn-controller defaults
REMOTE_PROBE_INTERVAL = 60000
OPENFLOW_PROBE_INTERVAL = 60

OVN_IMAGES = ["ovn-nb-db-server", "ovn-sb-db-server", "ovn-northd", "ovn-controller"]
OVS_IMAGES = ["openvswitch-db-server", "openvswitch-vswitchd"]


DB_PORTS = {"nb": NB_PORT, "sb": SB_PORT}
RAFT_PORTS = {"nb": 6643, "sb": 6644}  # kolla-ansible's ovn_nb/sb_db_raft_port
COMPONENTS = {"nb": "ovnNbDb", "sb": "ovnSbDb"}
SCHEMAS = {"nb": "OVN_Northbound", "sb": "OVN_Southbound"}
# The members' names are fully qualified: Open vSwitch resolves host names with
# libunbound, which applies no search domain of resolv.conf.
CLUSTER_DOMAIN = "cluster.local"


def replicas(site: Site, db: str) -> int:
    """The members of database ``db`` (nb or sb): 1 is a standalone server."""
    return site.get(f"services.neutron.{COMPONENTS[db]}.replicas", 1) or 1


def _headless_domain(site: Site, db: str) -> str:
    return f"ovn-{db}-db-headless.{site.get('namespace')}.svc.{CLUSTER_DOMAIN}"


def members(site: Site, db: str) -> list[str]:
    """Host names the clients of database ``db`` connect to: its Service, or each RAFT
    member's own Service (:func:`member_services`)."""
    ns = site.get("namespace")
    if replicas(site, db) == 1:
        return [f"ovn-{db}-db.{ns}.svc"]
    return [f"ovn-{db}-db-{i}.{ns}.svc.{CLUSTER_DOMAIN}" for i in range(replicas(site, db))]


# the label the StatefulSet controller gives each of its pods
POD_NAME = "statefulset.kubernetes.io/pod-name"


def member_services(site: Site) -> list[dict]:
    """A ClusterIP Service per member of a RAFT cluster, selecting that one pod, on the
    client port: the address neutron's ovn-address init container resolves stays when
    the member's pod restarts with a new IP (each member's pod IP would leave neutron
    with none of the cluster after a rolling restart of the StatefulSet)."""
    out = []
    for db in ("nb", "sb"):
        if replicas(site, db) == 1:
            continue
        labels = {
            "app.kubernetes.io/name": "neutron",
            "app.kubernetes.io/component": COMPONENTS[db],
        }
        for i in range(replicas(site, db)):
            out.append(
                {
                    "apiVersion": "v1",
                    "kind": "Service",
                    "metadata": {
                        "name": f"ovn-{db}-db-{i}",
                        "labels": {**labels, "app.kubernetes.io/part-of": "openstack"},
                    },
                    "spec": {
                        "type": "ClusterIP",
                        "selector": {**labels, POD_NAME: f"ovn-{db}-db-{i}"},
                        "ports": [
                            {
                                "name": "ovsdb",
                                "port": DB_PORTS[db],
                                "targetPort": "ovsdb",
                                "protocol": "TCP",
                            }
                        ],
                    },
                }
            )
    return out


def connection(site: Site, db: str) -> str:
    """The client connection of database ``db``: every member, comma-separated."""
    return ",".join(f"tcp:{host}:{DB_PORTS[db]}" for host in members(site, db))


def nb_connection(site: Site) -> str:
    return connection(site, "nb")


def sb_connection(site: Site) -> str:
    return connection(site, "sb")


def bridge_mappings(site: Site) -> list[tuple[str, str]]:
    """services.neutron.bridgeMappings as (physical network, bridge) pairs."""
    out = []
    for item in site.get("services.neutron.bridgeMappings", []) or []:
        physnet, bridge = item.split(":", 1)
        out.append((physnet, bridge))
    return out


# The daemons run as root and log to LOG_DIR; no oslo.config, no secrets.
KOLLA = ServiceConfig(
    "openvswitch",
    drop_in=None,
    permissions=(permission(LOG_DIR, "root:root", recurse=True),),
    owner="root",
)


def _db_command(db: str) -> str:
    """kolla-ansible's ovn_nb_command / ovn_sb_command without the RAFT options."""
    return " ".join(
        [
            f"/usr/share/ovn/scripts/ovn-ctl run_{db}_ovsdb",
            f"--db-{db}-sock=/run/ovn/ovn{db}_db.sock",
            f"--db-{db}-pidfile=/run/ovn/ovn{db}_db.pid",
            f"--db-{db}-file=/var/lib/openvswitch/ovn-{db}/ovn{db}.db",
            f"--ovn-{db}-logfile={LOG_DIR}/ovn-{db}-db.log",
            f"--ovn-{db}-log=-vconsole:info",
        ]
    )


def _raft_start(site: Site, db: str) -> str:
    """The start script of a RAFT member: create (pod 0) or join (the others) the
    cluster when the database file does not exist, then run the server with ovn-ctl."""
    domain = _headless_domain(site, db)
    port = RAFT_PORTS[db]
    others = " ".join(f"tcp:ovn-{db}-db-{i}.{domain}:{port}" for i in range(replicas(site, db)))
    return "\n".join(
        [
            "#!/bin/bash",
            f"# {header(site)}",
            f"# OVN {SCHEMAS[db]} RAFT member (kolla-ansible ovn-db role, members by DNS name).",
            "set -euo pipefail",
            f"db=/var/lib/openvswitch/ovn-{db}/ovn{db}.db",
            'name="$(hostname)"',
            f'local_addr="$name.{domain}"',
            'if [ ! -e "$db" ]; then',
            '    if [ "${name##*-}" = 0 ]; then',
            f'        ovsdb-tool create-cluster "$db" /usr/share/ovn/ovn-{db}.ovsschema'
            f' "tcp:$local_addr:{port}"',
            "    else",
            "        remotes=()",
            f"        for m in {others}; do",
            f'            [ "$m" = "tcp:$local_addr:{port}" ] || remotes+=("$m")',
            "        done",
            f'        ovsdb-tool join-cluster "$db" {SCHEMAS[db]} "tcp:$local_addr:{port}"'
            ' "${remotes[@]}"',
            "    fi",
            "fi",
            f'exec {_db_command(db)} --db-{db}-cluster-local-addr="$local_addr"'
            f" --db-{db}-cluster-local-port={port} --db-{db}-cluster-local-proto=tcp",
            "",
        ]
    )


def _db_config(site: Site, db: str) -> KollaConfig:
    name = f"ovn-{db}-db-kolla"
    if replicas(site, db) == 1:
        return KOLLA.config(name, _db_command(db))
    script = f"/usr/local/bin/kkc-ovn-{db}-db-start"
    return KOLLA.config(
        name, script, ConfigFile(f"kkc-ovn-{db}-db-start", _raft_start(site, db), script, "0755")
    )


def infra_patches(site: Site) -> list[dict]:
    """A RAFT member's postStart hook: set-connection on any member (--no-leader-only;
    the Connection row is replicated, so each member setting it is idempotent)."""
    out = []
    for db in ("nb", "sb"):
        if replicas(site, db) == 1:
            continue
        sock = f"/run/ovn/ovn{db}_db.sock"
        hook = (
            f"for i in $(seq 90); do if [ -S {sock} ] && ovn-{db}ctl --no-leader-only"
            f" --db=unix:{sock} --inactivity-probe={REMOTE_PROBE_INTERVAL} set-connection"
            f" ptcp:{DB_PORTS[db]}:0.0.0.0; then exit 0; fi; sleep 2; done; exit 1"
        )
        container = {
            "name": f"ovn-{db}-db",
            "ports": [
                {"name": "raft", "containerPort": RAFT_PORTS[db], "protocol": "TCP"},
            ],
            "lifecycle": {"postStart": {"exec": {"command": ["bash", "-c", hook]}}},
        }
        out.append(
            {
                "apiVersion": "apps/v1",
                "kind": "StatefulSet",
                "metadata": {"name": f"ovn-{db}-db"},
                "spec": {
                    "podManagementPolicy": "OrderedReady",
                    "template": {"spec": {"containers": [container]}},
                },
            }
        )
    return out


def infra(site: Site) -> tuple[list[Workload], list[KollaConfig]]:
    """OVN northbound and southbound databases and ovn-northd (stage infra)."""
    northd = " ".join(
        [
            "/usr/bin/ovn-northd -vconsole:info -vsyslog:off -vfile:info",
            f"--ovnnb-db={nb_connection(site)}",
            f"--ovnsb-db={sb_connection(site)}",
            f"--log-file={LOG_DIR}/ovn-northd.log",
            "--pidfile=/run/ovn/ovn-northd.pid",
            "--unixctl=/run/ovn/ovn-northd.ctl",
        ]
    )
    configs = [
        _db_config(site, "nb"),
        _db_config(site, "sb"),
        KOLLA.config("ovn-northd-kolla", northd),
    ]
    workloads = [
        # scalable (replicas, PodDisruptionBudget, anti-affinity) only as a RAFT cluster:
        # one replica keeps the base's output as it was
        *(
            Workload(
                "StatefulSet",
                f"ovn-{db}-db",
                f"ovn-{db}-db",
                "infra",
                COMPONENTS[db],
                claim=f"ovn-{db}-db-data",
                scalable=replicas(site, db) > 1,
                peer_port=RAFT_PORTS[db] if replicas(site, db) > 1 else None,
            )
            for db in ("nb", "sb")
        ),
        Workload("Deployment", "ovn-northd", "ovn-northd", "infra", "ovnNorthd", scalable=True),
    ]
    return workloads, configs


def _controller_setup(site: Site) -> str:
    """The per-node Open vSwitch settings kolla-ansible's ovn-controller role writes
    (setup-ovs.yml), as a script for the init container of ovn-controller.

    ovn-encap-ip: the node's IP as Kubernetes knows it (status.hostIP, the address the
    kubelet registered: the node network carries the Geneve tunnels), or, when the site
    names a tunnel interface (services.neutron.tunnelInterface, like kolla-ansible's
    tunnel_interface), that interface's first IPv4 address.
    system-id: the node name (stable, unique); hostname: the host name nova-compute
    reports (both pods use the host network), which port binding matches against."""
    neutron = site.get("services.neutron", {})
    mappings = bridge_mappings(site)
    iface = neutron.get("tunnelInterface") or ""
    external_ids = {
        "system-id": '"$NODE_NAME"',
        "hostname": '"$(hostname)"',
        "ovn-encap-type": "geneve",
        "ovn-encap-ip": '"$encap_ip"',
        "ovn-remote": shlex.quote(sb_connection(site)),
        "ovn-remote-probe-interval": str(REMOTE_PROBE_INTERVAL),
        "ovn-openflow-probe-interval": str(OPENFLOW_PROBE_INTERVAL),
        "ovn-monitor-all": "false",
    }
    if mappings:
        external_ids["ovn-bridge-mappings"] = shlex.quote(",".join(f"{p}:{b}" for p, b in mappings))
    if neutron.get("gatewayChassis", True):
        external_ids["ovn-cms-options"] = "enable-chassis-as-gw"
    if iface:
        encap = (
            f"encap_ip=$(ip -4 -o addr show dev {shlex.quote(iface)} "
            "| awk '{split($4, a, \"/\"); print a[1]; exit}')"
        )
    else:
        encap = 'encap_ip="$HOST_IP"'
    lines = [
        "#!/bin/bash",
        f"# {header(site)}",
        "# Open vSwitch settings of ovn-controller (kolla-ansible ovn-controller/setup-ovs.yml).",
        "set -euo pipefail",
        'vsctl() { ovs-vsctl --db=unix:/run/openvswitch/db.sock --timeout=10 "$@"; }',
        "for _ in $(seq 90); do vsctl show >/dev/null 2>&1 && break; sleep 2; done",
        encap,
        'if [ -z "$encap_ip" ]; then echo "no tunnel IP address found" >&2; exit 1; fi',
        "vsctl --may-exist add-br br-int -- set Bridge br-int fail_mode=secure",
        *(f"vsctl --may-exist add-br {shlex.quote(b)}" for _, b in mappings),
        "vsctl set Open_vSwitch . \\",
        *(f"    external_ids:{k}={v} \\" for k, v in external_ids.items()),
    ]
    lines[-1] = lines[-1].removesuffix(" \\")
    if not neutron.get("gatewayChassis", True):
        lines.append("vsctl remove Open_vSwitch . external_ids ovn-cms-options || true")
    if not mappings:
        lines.append("vsctl remove Open_vSwitch . external_ids ovn-bridge-mappings || true")
    lines.append('echo "ovn-controller settings applied (encap ip $encap_ip)"')
    return "\n".join(lines) + "\n"


def _start_ovsdb(site: Site) -> str:
    return "\n".join(
        [
            "#!/bin/bash",
            f"# {header(site)}",
            "# kolla-ansible's start-ovsdb-server, listening on 127.0.0.1 (host network).",
            "set -e",
            "db=/var/lib/openvswitch/conf.db",
            'if [ -f "$db" ] && [ "$(ovsdb-tool needs-conversion "$db")" = "yes" ]; then',
            '    ovsdb-tool convert "$db"',
            "fi",
            'if [ ! -e "$db" ]; then ovsdb-tool create "$db"; fi',
            'exec /usr/sbin/ovsdb-server "$db" -vconsole:info -vsyslog:off -vfile:info'
            " --remote=punix:/run/openvswitch/db.sock"
            f" --remote=ptcp:{OVSDB_PORT}:127.0.0.1"
            " --remote=db:Open_vSwitch,Open_vSwitch,manager_options"
            f" --log-file={LOG_DIR}/ovsdb-server.log --pidfile",
            "",
        ]
    )


def compute(site: Site) -> tuple[list[Workload], list[KollaConfig]]:
    """Open vSwitch (database and vswitchd) and ovn-controller on the nodes chosen by
    services.neutron.nodeSelector/tolerations (stage compute)."""
    ovsdb = KOLLA.config(
        "openvswitch-db-server-kolla",
        "/usr/local/bin/start-ovsdb-server",
        ConfigFile(
            "start-ovsdb-server", _start_ovsdb(site), "/usr/local/bin/start-ovsdb-server", "0755"
        ),
    )
    vswitchd = KOLLA.config(
        "openvswitch-vswitchd-kolla",
        "/usr/sbin/ovs-vswitchd unix:/run/openvswitch/db.sock -vconsole:info -vsyslog:off"
        f" -vfile:info --mlockall --log-file={LOG_DIR}/ovs-vswitchd.log --pidfile",
    )
    setup = KOLLA.config(
        "ovn-controller-setup-kolla",
        "/usr/local/bin/kkc-ovn-controller-setup",
        ConfigFile(
            "kkc-ovn-controller-setup",
            _controller_setup(site),
            "/usr/local/bin/kkc-ovn-controller-setup",
            "0755",
        ),
        permissions=(),
    )
    controller = KOLLA.config(
        "ovn-controller-kolla",
        "/usr/bin/ovn-controller -vconsole:info -vsyslog:off -vfile:info"
        f" --pidfile=/run/ovn/ovn-controller.pid --unixctl=/run/ovn/ovn-controller.ctl"
        f" --log-file={LOG_DIR}/ovn-controller.log tcp:127.0.0.1:{OVSDB_PORT}",
    )
    node = {"stage": "compute", "placed": False, "nodes": ""}
    workloads = [
        Workload("DaemonSet", "openvswitch-db", "openvswitch-db-server", component="ovsdb", **node),
        Workload(
            "DaemonSet",
            "openvswitch-vswitchd",
            "openvswitch-vswitchd",
            component="vswitchd",
            **node,
        ),
        Workload(
            "DaemonSet", "ovn-controller", "ovn-controller", component="ovnController", **node
        ),
    ]
    return workloads, [ovsdb, vswitchd, setup, controller]
