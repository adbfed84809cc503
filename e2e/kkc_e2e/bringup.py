"""One site's bring-up: infrastructure, then every stage's Jobs (each run twice) and
workloads in sync-wave order, with the API checks of each stage."""

from __future__ import annotations

import copy
import json
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import apis, optcheck, raft, schema
from .kube import KubeStandIn
from .pods import Container, Env, PodError, image_name, wait_port
from .render import Site, generated_secrets, hostnames, wave
from .restart import Supervisor, retry_job
from .venvs import image_users

JOB_TIMEOUT = 900.0
# Workloads that cannot run on this machine, and why (named in the summary).
CANNOT_RUN = {
    "nova-compute": "needs libvirt/KVM and the OVS datapath of a hypervisor",
    "nova-libvirt": "libvirtd with KVM/qemu domains cannot run outside a hypervisor host",
    "openvswitch-db": "the Open vSwitch datapath (kernel module) is not available here",
    "openvswitch-vswitchd": "the Open vSwitch datapath (kernel module) is not available here",
    "ovn-controller": "programs the local Open vSwitch datapath, which is not available",
    "neutron-ovn-metadata-agent": "needs ovn-controller, OVS ports and network namespaces "
    "of a compute host",
    "cinder-volume": "LVM/iSCSI (or Ceph) storage backend is not available here",
    "cinder-backup": "needs the volume backend and its storage",
}
# Containers of these images cannot run here (the monitoring overlay's sidecars too).
CANNOT_RUN_IMAGES = {
    "prometheus-": "Prometheus exporters: Kolla installs them from upstream release tarballs "
    "under /opt, which this machine does not have",
}
INFRA = ("mariadb", "rabbitmq", "memcached", "ovn-nb-db", "ovn-sb-db", "ovn-northd")


@dataclass
class Result:
    name: str
    ok: bool
    detail: str = ""


@dataclass
class Run:
    """One site's run. An upgrade moves the same run to the next release's output
    (``site``, ``env``, ``hop``): what runs keeps running until its workload rolls."""

    site: Site
    env: Env
    results: list[Result] = field(default_factory=list)
    running: list[Container] = field(default_factory=list)
    not_run: list[tuple[str, str]] = field(default_factory=list)
    hop: str = ""  # the release an upgrade moved to: prefixes every check's name
    # workload name -> (its pod template, the containers it runs)
    workloads: dict[str, tuple[dict, list[Container]]] = field(default_factory=dict)
    kubelet: Supervisor | None = None  # restarts the workloads' containers that exit
    supervised: list[Container] = field(default_factory=list)  # every one it watched
    # Job name and run -> the exit codes of the attempts that failed before it completed
    job_retries: dict[str, list[int]] = field(default_factory=dict)

    def record(self, name: str, ok: bool, detail: str = "") -> bool:
        name = f"{self.hop}: {name}" if self.hop else name
        self.results.append(Result(name, ok, detail))
        mark = "PASS" if ok else "FAIL"
        print(f"[{self.site.name}] {mark} {name}" + (f": {detail}" if detail else ""), flush=True)
        return ok

    def supervise(self, ctr: Container) -> None:
        """Restart CTR when it exits, as the kubelet does (restartPolicy Always)."""
        if self.kubelet is None:
            self.kubelet = Supervisor(
                lambda line: print(f"[{self.site.name}] kubelet: {line}", flush=True)
            )
            self.kubelet.start()
        ctr.supervised = True
        self.supervised.append(ctr)
        self.kubelet.watch(ctr)

    # -- pods ------------------------------------------------------------------
    def pod(self, obj: dict, ordinal: int = 0) -> tuple[dict, Path]:
        """The pod spec of OBJ (its pod ORDINAL of a StatefulSet) and a new pod directory."""
        spec = copy.deepcopy(obj["spec"]["template"]["spec"])
        claims = self.env.workdir / "claims" if self.env.claims is None else self.env.claims
        for vol in spec.get("volumes", []):
            # a claim outlives its pods (and an upgrade): one directory per claim
            if "persistentVolumeClaim" in vol:
                vol["claimDir"] = str(claims / vol["persistentVolumeClaim"]["claimName"])
        for tmpl in obj["spec"].get("volumeClaimTemplates", []):
            claim = f"{tmpl['metadata']['name']}-{obj['metadata']['name']}-{ordinal}"
            spec.setdefault("volumes", []).append(
                {"name": tmpl["metadata"]["name"], "emptyDir": {}, "claimDir": str(claims / claim)}
            )
        pod = obj["metadata"]["name"] + (f"-{ordinal}" if ordinal else "")
        poddir = self.env.workdir / "pods" / f"{self.env.number():03d}-{pod}"
        poddir.mkdir(parents=True)
        return spec, poddir

    def run_job(self, job: dict, attempt: int | str) -> bool:
        """Run JOB's pod to completion (ATTEMPT names the run), as the Job controller
        does: a failed attempt is retried after its back-off until more than
        ``backoffLimit`` (default 6) have failed; in the same pod for restartPolicy
        OnFailure (the containers that completed stay done), in a new pod for Never."""
        name = job["metadata"]["name"]
        label = f"job {name} run {attempt}"
        limit = int(job["spec"].get("backoffLimit", 6))
        on_failure = job["spec"]["template"]["spec"].get("restartPolicy") == "OnFailure"
        pod: dict = {"done": None}  # the pod of the attempts (a new one after a Never)

        def try_pod() -> tuple[int, str]:
            if pod["done"] is None:
                pod["spec"], pod["dir"] = self.pod(job)
                pod["done"] = 0
            spec = pod["spec"]
            containers = spec.get("initContainers", []) + spec["containers"]
            for i in range(pod["done"], len(containers)):
                c = containers[i]
                ctr = Container(self.env, spec, c, f"{name}-{c['name']}", pod["dir"])
                code = ctr.run(JOB_TIMEOUT)  # PodError (the harness's deadline): no retry
                if code != 0:
                    pod["done"] = i if on_failure else None
                    return (
                        code,
                        f"container {c['name']} exited with {code}; log {ctr.log}:\n{ctr.tail()}",
                    )
                pod["done"] = i + 1
            return 0, ""

        def wait(delay: float) -> None:
            print(f"[{self.site.name}] {label} failed: retry in {delay:.0f} s", flush=True)
            time.sleep(delay)

        try:
            done = retry_job(try_pod, limit, wait)
        except PodError as exc:
            return self.record(label, False, str(exc))
        codes = ", ".join(map(str, done.failures))
        if done.failures:
            self.job_retries[f"{name} run {attempt}"] = done.failures
        if not done.ok:
            return self.record(
                label,
                False,
                f"failed {len(done.failures)} times (exit {codes}; backoffLimit "
                f"{limit}): {done.last}",
            )
        return self.record(
            label,
            True,
            f"completed after {len(done.failures)} failed attempts (exit {codes})"
            if done.failures
            else "",
        )

    def roll(self, obj: dict) -> bool:
        """Stop what runs of the workload OBJ when its pod template changed (as its
        controller rolls it: preStop hooks first); whether it must start (again)."""
        name = obj["metadata"]["name"]
        if name not in self.workloads:
            return True
        template, containers = self.workloads[name]
        if template == obj["spec"]["template"]:
            return False
        self.stop(containers)
        del self.workloads[name]
        return True

    def prune(self) -> None:
        """Stop the workloads the current output no longer has (the controller prunes)."""
        names = {o["metadata"]["name"] for o in self.site.objects}
        for name in [n for n in self.workloads if n not in names]:
            self.stop(self.workloads.pop(name)[1])

    def start_workload(self, obj: dict) -> list[Container]:
        name = obj["metadata"]["name"]
        started: list[Container] = []
        self.workloads[name] = (copy.deepcopy(obj["spec"]["template"]), started)
        spec, poddir = self.pod(obj)
        for c in spec.get("initContainers", []):
            ctr = Container(self.env, spec, c, f"{name}-{c['name']}", poddir)
            if ctr.run(JOB_TIMEOUT) != 0:
                raise PodError(f"init container {c['name']} failed:\n{ctr.tail()}")
        for c in spec["containers"]:
            why = cannot_run_image(c)
            if why:
                self.not_run.append((f"{name}/{c['name']}", why))
                continue
            ctr = Container(self.env, spec, c, f"{name}-{c['name']}", poddir)
            ctr.start()
            self.running.append(ctr)
            started.append(ctr)
            self.supervise(ctr)
            if ctr.post_start() not in (None, 0):
                raise PodError(f"postStart hook of {c['name']} failed")
        return started

    def schema(self) -> list[str] | None:
        """The databases' schema (schema.snapshot); None while MariaDB does not run."""
        mariadb = self.workloads.get("mariadb")
        if mariadb is None or not all(c.alive() for c in mariadb[1]):
            return None
        return schema.snapshot(self.env.secrets["mariadb-secrets"]["root-password"])

    def secrets_exist(self, obj: dict) -> bool:
        for vol in obj["spec"]["template"]["spec"].get("volumes", []):
            sec = vol.get("secret")
            if sec and not sec.get("optional") and self.env.secret(sec["secretName"]) is None:
                return False
        return True

    # -- infrastructure ----------------------------------------------------------
    def infra(self, obj: dict) -> None:
        name = obj["metadata"]["name"]
        if raft.clustered(obj):  # every member a pod of its own network (raft.py)
            raft.start_members(self, obj)
            return
        spec, poddir = self.pod(obj)
        main = next(
            (c for c in spec["containers"] if c["name"] == name),
            next(c for c in spec["containers"] if not cannot_run_image(c)),
        )
        for c in spec["containers"]:
            if c is not main and cannot_run_image(c):
                self.not_run.append((f"{name}/{c['name']}", cannot_run_image(c)))
        ctr = Container(self.env, spec, main, name, poddir)
        self.workloads[name] = (copy.deepcopy(obj["spec"]["template"]), [ctr])
        port = None
        if name == "mariadb":
            if not (ctr.volume_dir("mariadb-data") / "mysql").is_dir():  # a new claim
                self.bootstrap_mariadb(ctr)
            port = 3306
        elif name == "rabbitmq":
            cookie = self.env.secrets["rabbitmq-secrets"]["erlang-cookie"]
            data = ctr.volume_dir("rabbitmq-data")
            (data / ".erlang.cookie").write_text(cookie)
            (data / ".erlang.cookie").chmod(0o400)
            ids = _ids(self.env.files, "rabbitmq")
            for p in (data, data / ".erlang.cookie"):
                _chown(p, *ids)
            port = 5672
        elif name == "memcached":
            port = 11211
        elif name in ("ovn-nb-db", "ovn-sb-db"):
            port = 6641 if name == "ovn-nb-db" else 6642
        ctr.start()
        self.running.append(ctr)
        self.supervise(ctr)
        hook = ctr.post_start()
        if hook not in (None, 0):
            self.record(f"infra {name} postStart hook", False, f"exited with {hook}")
        if port is None:
            time.sleep(3)
            ok = ctr.alive()
        else:  # a server starting on existing data (an upgrade) recovers it first
            ok = wait_port(port, 300, ctr)
        self.record(
            f"infra {name} ({' '.join(_command(self.env, ctr))})",
            ok,
            "" if ok else f"not listening; log {ctr.log}:\n{ctr.tail()}",
        )
        if name == "rabbitmq" and ok:
            time.sleep(5)  # the default user is created after the listener opens

    def bootstrap_mariadb(self, ctr: Container) -> None:
        """What kolla's mariadb extend_start does for KOLLA_BOOTSTRAP: initialise the
        data directory and set the root password from the site's Secret."""
        data = ctr.volume_dir("mariadb-data")
        password = self.env.secrets["mariadb-secrets"]["root-password"]
        uid, gid = _ids(self.env.files, "mysql")
        _chown(data, uid, gid)
        subprocess.run(
            [
                "mariadb-install-db",
                f"--datadir={data}",
                "--user=mysql",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
            ],
            check=True,
            capture_output=True,
        )
        sql = (
            f"ALTER USER 'root'@'localhost' IDENTIFIED BY '{password}';\n"
            f"CREATE USER IF NOT EXISTS 'root'@'%' IDENTIFIED BY '{password}';\n"
            "GRANT ALL PRIVILEGES ON *.* TO 'root'@'%' WITH GRANT OPTION;\n"
            # as mysql_secure_installation: no password-less root for other hosts
            "DROP USER IF EXISTS 'root'@'127.0.0.1', 'root'@'::1', "
            f"'root'@'{socket.gethostname()}';\n"
            "FLUSH PRIVILEGES;\n"
        )
        sockdir = Path(tempfile.mkdtemp(prefix="kkc-mdb-"))  # a socket path is short
        _chown(sockdir, uid, gid)
        sock = sockdir / "s"
        log = open(data.parent / "mariadb-bootstrap.log", "wb")  # noqa: SIM115
        server = subprocess.Popen(
            [
                "mariadbd",
                "--no-defaults",
                f"--datadir={data}",
                "--user=mysql",
                "--skip-networking",
                f"--socket={sock}",
                f"--pid-file={sockdir}/pid",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            for _ in range(120):
                done = subprocess.run(
                    ["mariadb", f"--socket={sock}", "-uroot"],
                    input=sql,
                    text=True,
                    capture_output=True,
                )
                if done.returncode == 0 or "ERROR 2002" not in done.stderr:
                    break
                time.sleep(0.5)
            if done.returncode != 0:
                raise PodError(f"mariadb bootstrap failed: {done.stderr.strip()[:300]}")
        finally:
            server.terminate()
            server.wait(60)
            shutil.rmtree(sockdir, ignore_errors=True)

    def stop(self, containers: list[Container]) -> None:
        for ctr in reversed(containers):
            hook = (ctr.spec.get("lifecycle") or {}).get("preStop")
            if hook and ctr.alive():  # as the kubelet: the hook first, then SIGTERM
                code = ctr.hook("preStop", 120)
                command = " ".join(hook["exec"]["command"])
                detail = "" if code == 0 else f"exited with {code}"
                self.record(f"preStop hook of {ctr.tag} ({command})", code == 0, detail)
            ctr.stop()
            if self.kubelet is not None:
                self.kubelet.forget(ctr)
            if ctr in self.running:
                self.running.remove(ctr)

    def stop_all(self) -> None:
        self.stop(list(self.running))
        self.workloads.clear()
        if self.kubelet is not None:
            self.kubelet.close()
            self.kubelet = None

    def restarts(self) -> list[str]:
        """The summary's lines of what restarted: workloads' containers (with their
        exit codes) and Jobs that completed only after failed attempts."""
        lines = [
            f"restarted {c.tag}: {c.restarts} times (exit codes {', '.join(map(str, c.exits))})"
            for c in self.supervised
            if c.exits
        ]
        lines += [
            f"retried job {name}: {len(codes)} failed attempts (exit codes "
            f"{', '.join(map(str, codes))})"
            for name, codes in self.job_retries.items()
        ]
        return lines


def cannot_run_image(container: dict) -> str:
    image = image_name(container["image"])
    return next((why for p, why in CANNOT_RUN_IMAGES.items() if image.startswith(p)), "")


def _ids(files: dict[str, str], user: str) -> tuple[int, int]:
    for line in files["/etc/passwd"].splitlines():
        parts = line.split(":")
        if parts[0] == user:
            return int(parts[2]), int(parts[3])
    raise PodError(f"no user {user}")


def _chown(path: Path, uid: int, gid: int) -> None:
    import os

    os.chown(path, uid, gid)


def _command(env: Env, ctr: Container) -> str:
    if ctr.spec.get("command"):
        return ctr.spec["command"]
    cm = next(
        v["configMap"]["name"]
        for v in ctr.pod["volumes"]
        if v["name"]
        == next(
            m["name"]
            for m in ctr.spec["volumeMounts"]
            if m["mountPath"] == "/var/lib/kolla/config_files"
        )
    )
    return json.loads(env.configmaps[cm]["data"]["config.json"])["command"].split()[:1]


def new_env(
    site: Site,
    workdir: Path,
    venv: Path,
    set_configs: Path,
    kube: KubeStandIn,
    before: Env | None = None,
) -> Env:
    """What the containers of SITE's output share. BEFORE is the Env of the same site's
    previous release (an upgrade): its Secrets keep their values, its claims their data."""
    # the members of a RAFT cluster have addresses of their own (raft.py), the rest
    # of the site 127.0.0.1
    own = raft.host_addresses(site)
    hosts = (
        "127.0.0.1 localhost "
        + socket.gethostname()
        + "\n"
        + "".join(f"{own.get(h, '127.0.0.1')} {h}\n" for h in sorted({*hostnames(site), *own}))
    )
    env = Env(
        workdir,
        venv,
        set_configs,
        hosts,
        generated_secrets(site, before.secrets if before else None),
        kube,
        site.configmaps(),
        site.namespace,
        image_users(set_configs),
    )
    if before is not None:
        env.claims = before.claims or before.workdir / "claims"
        env.counter = before.counter
    return env


def check_options(run: Run) -> None:
    try:
        for label, unknown in optcheck.check(run.site, run.env.venv, run.env.secrets):
            run.record(f"options {label}", not unknown, "; ".join(unknown))
    except (RuntimeError, OSError, SystemExit) as exc:
        run.record("options of the rendered INI files", False, str(exc))


def bring_up(
    site: Site, workdir: Path, venv: Path, set_configs: Path, only_waves: int | None = None
) -> Run:
    kube = KubeStandIn(workdir / "kube", site.namespace)
    run = Run(site, new_env(site, workdir, venv, set_configs, kube))
    check_options(run)
    with kube:
        try:
            walk(run, only_waves)
            if only_waves is None:
                from .rotation import rotate_phase

                raft.failover_phase(run)
                rotate_phase(run)
        finally:
            run.stop_all()
    return run


def _workloads(site: Site, w: int) -> list[dict]:
    return [
        o
        for o in site.objects
        if o["kind"] in ("Deployment", "StatefulSet", "DaemonSet") and wave(o) == w
    ]


def start_infra(run: Run, w: int) -> None:
    """The infrastructure of wave W (MariaDB, RabbitMQ, ...), in INFRA's order; on an
    upgrade, each one whose pod template changed rolls onto its claim's data."""
    infra = [o for o in _workloads(run.site, w) if o["metadata"]["name"] in INFRA]
    for obj in sorted(infra, key=lambda o: INFRA.index(o["metadata"]["name"])):
        if run.roll(obj):
            run.infra(obj)


def run_jobs(run: Run, w: int) -> None:
    """Every Job of wave W, each twice: the second run must exit 0 too and leave the
    databases' schema as the first run left it."""
    # The Jobs of a wave start together in a cluster; a pod whose Secret volume does
    # not exist yet waits for it (keystone's bootstrap for keystone-keys-setup).
    pending = sorted(
        (j for j in run.site.of_kind("Job") if wave(j) == w), key=lambda j: j["metadata"]["name"]
    )
    while pending:
        ready = [j for j in pending if run.secrets_exist(j)] or pending
        job = ready[0]
        pending.remove(job)
        if not run.run_job(job, 1):
            continue
        before = run.schema()
        if run.run_job(job, 2) and before is not None:
            after = run.schema() or []
            changed = schema.difference(before, after)
            run.record(
                f"job {job['metadata']['name']} run 2 left the schema as run 1 did "
                f"({len(after)} columns, indexes and versions)",
                not changed,
                changed,
            )


def start_workloads(run: Run, w: int) -> None:
    """The other workloads of wave W (rolling what runs of them), then their API
    checks."""
    started: list[tuple[str, Container]] = []
    for obj in _workloads(run.site, w):
        name = obj["metadata"]["name"]
        if name in INFRA:
            continue
        if name in CANNOT_RUN:
            run.not_run.append((name, CANNOT_RUN[name]))
            continue
        if not run.roll(obj):
            continue
        try:
            started += [(name, c) for c in run.start_workload(obj)]
        except PodError as exc:
            run.record(f"start {name}", False, str(exc))
    apis.check_wave(run, started)
    apis.service_tokens(run, w)


def walk(run: Run, only_waves: int | None = None) -> None:
    """The site's sync-waves in order: the infrastructure, the Jobs, the workloads."""
    site = run.site
    for w in site.waves():
        if only_waves is not None and w > only_waves:
            break
        print(f"[{site.name}] == sync-wave {w}" + (f" ({run.hop})" if run.hop else ""), flush=True)
        start_infra(run, w)
        run_jobs(run, w)
        start_workloads(run, w)
    run.prune()
    for cj in site.of_kind("CronJob"):
        run.not_run.append(
            (f"cronjob {cj['metadata']['name']}", "scheduled CronJob; not part of the bring-up")
        )
