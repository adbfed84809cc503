"""The API checks of each stage: every started HTTP workload must answer its readiness
path and its real requests; the others must stay up for 30 s."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from . import apache, checks
from .pods import Container, wait_port
from .render import wave
from .restart import CAP

STAY_UP = 30.0


def admin(run) -> tuple[str, dict]:
    ns = run.site.namespace
    password = run.env.secrets["keystone-secrets"]["admin-password"]
    return checks.token(f"http://keystone-api.{ns}.svc:5000", "admin", password, "admin")


def _keystone(run, ctr):
    tok, _ = admin(run)
    return "token for admin"


def _glance(run, ctr):
    tok, body = admin(run)
    url = checks.endpoint(body, "image")
    img = checks.call(
        "POST",
        f"{url}/v2/images",
        tok,
        {"name": "kkc-e2e", "disk_format": "raw", "container_format": "bare"},
        expect=(201,),
    )
    listed = checks.call("GET", f"{url}/v2/images", tok)
    if img["id"] not in [i["id"] for i in listed["images"]]:
        raise checks.CheckError("created image not listed")
    return f"created and listed image {img['id']}"


def _placement(run, ctr):
    tok, body = admin(run)
    url = checks.endpoint(body, "placement")
    rps = checks.call(
        "GET", f"{url}/resource_providers", tok, headers={"OpenStack-API-Version": "placement 1.0"}
    )
    return f"{len(rps['resource_providers'])} resource providers"


def _nova(run, ctr):
    tok, body = admin(run)
    url = checks.endpoint(body, "compute")
    servers = checks.call("GET", f"{url}/servers", tok)["servers"]
    flavors = checks.call("GET", f"{url}/flavors", tok)["flavors"]
    services = checks.call("GET", f"{url}/os-services", tok)["services"]
    names = sorted({s["binary"] for s in services})
    return f"{len(servers)} servers, {len(flavors)} flavors, compute services {names}"


def _neutron(run, ctr):
    tok, body = admin(run)
    url = checks.endpoint(body, "network").rstrip("/")
    net = checks.call(
        "POST", f"{url}/v2.0/networks", tok, {"network": {"name": "kkc-e2e"}}, expect=(201,)
    )["network"]
    sub = checks.call(
        "POST",
        f"{url}/v2.0/subnets",
        tok,
        {
            "subnet": {
                "network_id": net["id"],
                "ip_version": 4,
                "cidr": "192.0.2.0/24",
                "name": "kkc-e2e",
            }
        },
        expect=(201,),
    )["subnet"]
    return f"network {net['id']} with subnet {sub['cidr']}"


def _cinder(run, ctr):
    tok, body = admin(run)
    url = checks.endpoint(body, "volumev3")
    types = checks.call("GET", f"{url}/types", tok)["volume_types"]
    return f"{len(types)} volume types"


def _heat(run, ctr):
    tok, body = admin(run)
    url = checks.endpoint(body, "orchestration")
    stacks = checks.call("GET", f"{url}/stacks", tok)["stacks"]
    return f"{len(stacks)} stacks"


def _horizon(run, ctr):
    # with the Host header of the rendered probe (Django answers 400 to a host that
    # ALLOWED_HOSTS does not list)
    status, text, _ = checks.call(
        "GET", "http://127.0.0.1:80/auth/login/", headers=probe_headers(ctr), raw=True
    )
    if "login" not in text.lower():
        raise checks.CheckError("no login form")
    return "login page"


REQUESTS = {
    "keystone-api": _keystone,
    "glance-api": _glance,
    "placement-api": _placement,
    "nova-api": _nova,
    "neutron-server": _neutron,
    "cinder-api": _cinder,
    "heat-api": _heat,
    "horizon": _horizon,
}


def probe_headers(ctr: Container) -> dict[str, str]:
    """The httpHeaders of the container's readinessProbe (horizon's Host: horizon)."""
    probe = (ctr.spec.get("readinessProbe") or {}).get("httpGet") or {}
    return {h["name"]: h["value"] for h in probe.get("httpHeaders", [])}


def _port(ctr: Container) -> tuple[int, str] | None:
    probe = (ctr.spec.get("readinessProbe") or {}).get("httpGet")
    ports = {p.get("name"): p["containerPort"] for p in ctr.spec.get("ports", [])}
    if probe:
        port = probe["port"]
        return (ports.get(port, port) if isinstance(port, str) else port), probe.get("path", "/")
    return None


def _via(ctr: Container) -> str:
    command = (ctr.kolla_command() or "").split()
    if apache.is_httpd(command):
        return " (no Apache here: the vhost's WSGI application under uWSGI)"
    return ""


def check_wave(run, started: list[tuple[str, Container]]) -> None:
    for name, ctr in started:
        port = _port(ctr)
        if port is None:
            continue
        if not wait_port(port[0], 180, ctr):
            run.record(f"api {name} listens on {port[0]}", False, f"log {ctr.log}:\n{ctr.tail()}")
            continue
        try:
            # readiness path first (an API answering 401/300 is up)
            deadline = time.monotonic() + 120
            while True:
                try:
                    checks.call(
                        "GET",
                        f"http://127.0.0.1:{port[0]}{port[1]}",
                        headers=probe_headers(ctr),
                        expect=(200, 300, 401),
                        raw=True,
                    )
                    break
                except checks.CheckError:
                    if time.monotonic() > deadline or ctr.gone():
                        raise
                    time.sleep(2)
            detail = REQUESTS[name](run, ctr) if name in REQUESTS else f"GET {port[1]}"
            run.record(f"api {name}{_via(ctr)}", True, detail)
        except (checks.CheckError, KeyError, ValueError) as exc:
            run.record(f"api {name}{_via(ctr)}", False, f"{exc}; log {ctr.log}:\n{ctr.tail()}")
    background = [(n, c) for n, c in started if _port(c) is None]
    if background:
        time.sleep(STAY_UP)
        for name, ctr in background:
            if not stays_up(ctr, STAY_UP):
                run.record(
                    f"up {name} for {STAY_UP:.0f}s", False, f"{_restarted(ctr)}log {ctr.log}"
                )
                continue
            if name in NO_RPC or not uses_amqp(run, ctr):
                run.record(
                    f"up {name} for {STAY_UP:.0f}s", True, _restarted(ctr) + NO_RPC.get(name, "")
                )
                continue
            amqp = established(process_tree(ctr.proc.pid), AMQP_PORT)
            run.record(
                f"up {name} for {STAY_UP:.0f}s, connected to RabbitMQ",
                amqp > 0,
                f"{_restarted(ctr)}{amqp} AMQP connections"
                if amqp
                else f"no AMQP connection; log {ctr.log}:\n{ctr.tail()}",
            )


def stays_up(ctr: Container, seconds: float, clock=time.monotonic, sleep=time.sleep) -> bool:
    """Whether CTR's current run has lasted SECONDS: a container that exited and was
    restarted (restart.Supervisor) gets its back-off's cap and SECONDS more to get
    there; a crash loop does not."""
    deadline = clock() + CAP + seconds + 5
    while ctr.up_for() < seconds:
        if ctr.gone() or clock() > deadline:
            return False
        sleep(1)
    return True


def _restarted(ctr: Container) -> str:
    if not ctr.exits:
        return ""
    return f"restarted {ctr.restarts} times (exit {', '.join(map(str, ctr.exits))}); "


AMQP_PORT = 5672
# Workers that read transport_url (neutron.conf) but serve no RPC: they open no AMQP
# connection of their own, so only "alive" is checked.
NO_RPC = {
    "neutron-periodic-workers": "no RPC server: it runs periodic tasks against the database",
    "neutron-ovn-maintenance-worker": "no RPC server: it syncs the OVN databases",
}


def uses_amqp(run, ctr: Container) -> bool:
    """Whether the container's configuration (its Secret drop-ins) sets a transport_url."""
    for vol in ctr.pod.get("volumes", []):
        name = (vol.get("secret") or {}).get("secretName")
        data = run.env.secret(name) if name else None
        if data and any("transport_url" in v for v in data.values()):
            return True
    return False


def process_tree(sid: int) -> list[int]:
    """The processes of a container (each one is started in a session of its own)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.getsid(int(entry.name)) == sid:
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def socket_inodes(pids: list[int], proc: Path = Path("/proc")) -> set[str]:
    """The inodes of the sockets that the processes ``pids`` hold open (their fds), as
    /proc/net/tcp{,6} names them; a process gone or not readable holds none."""
    inodes = set()
    for pid in pids:
        try:
            fds = list((proc / str(pid) / "fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                link = os.readlink(fd)
            except OSError:
                continue
            if link.startswith("socket:["):
                inodes.add(link[8:-1])
    return inodes


def established(pids: list[int], port: int, proc: Path = Path("/proc")) -> int:
    """How many established TCP connections to ``port`` the processes ``pids`` hold
    (their socket inodes in /proc/net/tcp{,6}): an AMQP login that RabbitMQ refused
    leaves none."""
    inodes = socket_inodes(pids, proc)
    count = 0
    for table in ("tcp", "tcp6"):
        try:
            lines = (proc / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            if len(f) > 9 and f[3] == "01" and int(f[2].rsplit(":", 1)[1], 16) == port:
                count += f[9] in inodes
    return count


def service_tokens(run, w: int) -> None:
    ns = run.site.namespace
    for job in sorted(run.site.of_kind("Job"), key=lambda j: j["metadata"]["name"]):
        if wave(job) != w or not job["metadata"]["name"].endswith("-ks-register"):
            continue
        c = job["spec"]["template"]["spec"]["containers"][0]
        envs = {e["name"]: e for e in c.get("env", [])}
        reg = json.loads(envs["KKC_REGISTRATION"]["value"])
        ref = envs["SERVICE_PASSWORD"]["valueFrom"]["secretKeyRef"]
        password = run.env.secrets[ref["name"]][ref["key"]]
        user = reg.get("user") or job["metadata"]["name"].removesuffix("-ks-register")
        try:
            checks.token(f"http://keystone-api.{ns}.svc:5000", user, password, "service")
            run.record(f"api keystone token for {user}", True)
        except checks.CheckError as exc:
            run.record(f"api keystone token for {user}", False, str(exc))
