"""Pods of the rendered output as local processes: volumes materialised in a scratch
directory, environment resolved from the generated Secrets, and each container started
through ``inns`` in a private mount namespace (see inns.py)."""

from __future__ import annotations

import base64
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from .image import START, START_ENV, WRITABLE, ImageError
from .image import stage as image_stage
from .restart import BackOff

# Kolla's users (kolla/common/users.py) for the images kkc uses; the container's user
# where the image sets one (USER in the Dockerfile), else root.
KOLLA_USERS = {
    "kolla": 42400,
    "ansible": 42401,
    "cinder": 42407,
    "glance": 42415,
    "heat": 42418,
    "horizon": 42420,
    "keystone": 42425,
    "memcached": 42457,
    "mysql": 42434,
    "neutron": 42435,
    "nova": 42436,
    "openvswitch": 42476,
    "placement": 42482,
    "rabbitmq": 42439,
}
IMAGE_USER = {
    "kolla-toolbox": "ansible",
    "glance-api": "glance",
    "nova-api": "nova",
    "nova-conductor": "nova",
    "nova-scheduler": "nova",
    "nova-novncproxy": "nova",
    "neutron-server": "neutron",
    "placement-api": "placement",
    "cinder-api": "cinder",
    "cinder-scheduler": "cinder",
    "heat-api": "heat",
    "heat-api-cfn": "heat",
    "heat-engine": "heat",
    "horizon": "horizon",
    "memcached": "memcached",
    "rabbitmq": "rabbitmq",
    "keystone": "keystone",
    "mariadb-server": "mysql",
}
VENV_PATH = "/var/lib/kolla/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def image_name(image: str) -> str:
    return image.rsplit("/", 1)[-1].split(":", 1)[0]


def passwd_files() -> dict[str, str]:
    """/etc/passwd and /etc/group of the host plus Kolla's users (private copies)."""
    passwd = Path("/etc/passwd").read_text()
    group = Path("/etc/group").read_text()
    have_users = {line.split(":")[0] for line in passwd.splitlines() if line}
    have_groups = {line.split(":")[0] for line in group.splitlines() if line}
    for name, uid in KOLLA_USERS.items():
        if name not in have_groups:
            group += f"{name}:x:{uid}:\n"
        if name not in have_users:
            home = f"/var/lib/{name}"
            passwd += f"{name}:x:{uid}:{uid}::{home}:/usr/sbin/nologin\n"
    # every kolla user is in group kolla (as in the images)
    lines = []
    for line in group.splitlines():
        if line.startswith("kolla:"):
            members = ",".join(n for n in KOLLA_USERS if n != "kolla")
            line = f"kolla:x:{KOLLA_USERS['kolla']}:{members}"
        lines.append(line)
    return {"/etc/passwd": passwd, "/etc/group": "\n".join(lines) + "\n"}


@dataclass
class Env:
    """What every container of one site run shares."""

    workdir: Path
    venv: Path
    set_configs: Path
    hosts: str
    secrets: dict[str, dict[str, str]]  # name -> key -> value (generated)
    kube: object  # KubeStandIn
    configmaps: dict[str, dict]
    namespace: str
    image_users: dict[str, str] = field(default_factory=dict)
    debs: Path | None = None  # the Debian packages image.UNPACK_DEBS, downloaded
    files: dict[str, str] = field(default_factory=passwd_files)
    counter: int = 0
    claims: Path | None = None  # the claims' directories (None: workdir/claims)

    def image_tree(self, image: str) -> Path:
        """What the image adds below / (image.py), staged once per run."""
        docker = self.set_configs.parent.parent
        debs = self.debs or self.venv.parent / "e2e-debs"
        try:
            with _NUMBERS:  # a restart (restart.Supervisor's thread) stages it too
                return image_stage(image, docker, self.venv, debs, self.workdir / "images")
        except (ImageError, OSError, subprocess.CalledProcessError) as exc:
            raise PodError(f"image {image}: {exc}") from exc

    def number(self) -> int:
        """The next number of a pod's or container's directory (the supervisor's
        thread starts containers too)."""
        with _NUMBERS:
            self.counter += 1
            return self.counter

    def secret(self, name: str) -> dict[str, str] | None:
        if name in self.secrets:
            return self.secrets[name]
        obj = self.kube.store.get(self.namespace, name)
        if obj is None:
            return None
        return {k: base64.b64decode(v).decode("latin-1") for k, v in obj.get("data", {}).items()}


_NUMBERS = threading.RLock()


class PodError(Exception):
    pass


@dataclass(frozen=True)
class PodNet:
    """A pod that has a network of its own (raft.py: each member of a RAFT cluster, as
    they all bind the same ports): its network namespace (a path), its address, and the
    host name and stable DNS name the kubelet gives a StatefulSet's pod."""

    netns: str
    ip: str
    hostname: str
    fqdn: str


def _uid_name(uid: int) -> str:
    for name, value in KOLLA_USERS.items():
        if value == uid:
            return name
    return "root" if uid == 0 else str(uid)


class Container:
    """One container of a pod, ready to start."""

    def __init__(
        self, env: Env, pod: dict, spec: dict, tag: str, poddir: Path, net: PodNet | None = None
    ):
        self.env, self.pod, self.spec, self.tag, self.net = env, pod, spec, tag, net
        self.dir = env.workdir / "containers" / f"{env.number():03d}-{tag}"
        self.dir.mkdir(parents=True)
        self.poddir = poddir
        self.log = self.dir / "output.log"
        self.proc: subprocess.Popen | None = None
        # the kubelet's side (restart.Supervisor): a container that exits starts again
        # after its back-off unless the harness is stopping it
        self.lock = threading.RLock()
        self.stopping = False
        self.supervised = False  # restartPolicy Always: a workload's container
        self.started_at = 0.0
        self.restart_at: float | None = None  # when it starts again (None: not waiting)
        self.restarts = 0
        self.exits: list[int] = []  # the exit codes of its runs that ended on their own
        self.backoff = BackOff()

    # -- volumes ---------------------------------------------------------------
    def _volume(self, vol: dict) -> Path:
        # a claim (claimDir, set by bringup.Run.pod) outlives the pod
        path = Path(vol["claimDir"]) if "claimDir" in vol else self.poddir / "volumes" / vol["name"]
        if path.exists():
            return path
        path.mkdir(parents=True)
        if "configMap" in vol:
            cm = self.env.configmaps.get(vol["configMap"]["name"])
            if cm is None:
                raise PodError(f"ConfigMap {vol['configMap']['name']} is not in the output")
            data = cm.get("data", {})
            items = vol["configMap"].get("items") or [{"key": k, "path": k} for k in data]
            for item in items:
                (path / item["path"]).write_text(data[item["key"]])
                (path / item["path"]).chmod(vol["configMap"].get("defaultMode", 0o644))
        elif "secret" in vol:
            name = vol["secret"]["secretName"]
            data = self.env.secret(name)
            if data is None:
                if vol["secret"].get("optional"):
                    return path
                raise PodError(f"Secret {name} does not exist (volume {vol['name']})")
            items = vol["secret"].get("items") or [{"key": k, "path": k} for k in data]
            for item in items:
                if item["key"] not in data:
                    raise PodError(f"Secret {name} has no key {item['key']}")
                (path / item["path"]).write_bytes(data[item["key"]].encode("latin-1"))
                (path / item["path"]).chmod(vol["secret"].get("defaultMode", 0o644))
        else:  # emptyDir, persistentVolumeClaim: a directory of this run
            path.chmod(0o777)
        fs_group = (self.pod.get("securityContext") or {}).get("fsGroup")
        if fs_group is not None:
            # the kubelet gives the pod's volumes to fsGroup (files keep their mode)
            for item in [path, *path.rglob("*")]:
                os.chown(item, 0, int(fs_group))
            if "secret" not in vol and "configMap" not in vol:
                path.chmod(0o2777)
        return path

    def volume_dir(self, name: str) -> Path:
        vol = next(v for v in self.pod.get("volumes", []) if v["name"] == name)
        return self._volume(vol)

    # -- environment -----------------------------------------------------------
    def environment(self) -> dict[str, str]:
        out = {
            "PATH": VENV_PATH,
            "LANG": "C.UTF-8",
            "HOSTNAME": self.tag,
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        if self.pod.get("serviceAccountName") and self.pod.get(
            "automountServiceAccountToken", True
        ):
            out.update(self.env.kube.env)
        for item in self.spec.get("env", []):
            name = item["name"]
            if "value" in item:
                value = re.sub(
                    r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)",
                    lambda m: out.get(m.group(1), m.group(0)),
                    item["value"],
                )
                out[name] = value
                continue
            ref = item.get("valueFrom", {})
            if "secretKeyRef" in ref:
                sref = ref["secretKeyRef"]
                data = self.env.secret(sref["name"]) or {}
                if sref["key"] not in data:
                    if sref.get("optional"):
                        continue
                    raise PodError(f"env {name}: Secret {sref['name']} has no key {sref['key']}")
                out[name] = data[sref["key"]]
            elif "fieldRef" in ref:
                path = ref["fieldRef"]["fieldPath"]
                out[name] = {
                    "status.podIP": self.net.ip if self.net else "127.0.0.1",
                    "metadata.namespace": self.env.namespace,
                    "metadata.name": self.tag,
                    "spec.nodeName": "localhost",
                }.get(path, "")
            else:
                raise PodError(f"env {name}: unsupported valueFrom {sorted(ref)}")
        return out

    def user(self) -> str:
        uid = (self.spec.get("securityContext") or {}).get("runAsUser")
        if uid is None:
            uid = (self.pod.get("securityContext") or {}).get("runAsUser")
        if uid is not None:
            return _uid_name(int(uid))
        if self.spec.get("command"):
            return "root"
        image = image_name(self.spec["image"])
        return self.env.image_users.get(image, IMAGE_USER.get(image, "root"))

    def inns_spec(self, argv: list[str] | None = None) -> dict:
        binds: list[list] = []
        vols = {v["name"]: v for v in self.pod.get("volumes", [])}
        for mount in self.spec.get("volumeMounts", []):
            vol = vols.get(mount["name"])
            if vol is None:
                raise PodError(f"volumeMount {mount['name']} has no volume")
            src = self._volume(vol)
            if mount.get("subPath"):
                src = src / mount["subPath"]
            dest = re.sub(r"^/var/run/", "/run/", mount["mountPath"])
            binds.append([str(src), dest, bool(mount.get("readOnly"))])
        binds.append([str(self.env.venv), "/var/lib/kolla/venv", True])
        image = image_name(self.spec["image"])
        for i, dest in enumerate(WRITABLE.get(image, [])):
            own = self.dir / f"writable-{i}"
            if not own.exists():
                venv_dir = self.env.venv / dest.removeprefix("/var/lib/kolla/venv/")
                shutil.copytree(venv_dir, own, symlinks=True)
            binds.append([str(own), dest, False])
        if self.pod.get("serviceAccountName") and self.pod.get(
            "automountServiceAccountToken", True
        ):
            binds.append(
                [str(self.env.kube.sa_dir), "/run/secrets/kubernetes.io/serviceaccount", True]
            )
        command = list(self.spec.get("command") or []) + list(self.spec.get("args") or [])
        kolla_start = not command
        return {
            "scratch": str(self.dir / "ns"),
            "trees": [str(self.env.image_tree(image_name(self.spec["image"])))],
            "binds": binds,
            "files": {**self.env.files, "/etc/hosts": self.hosts()},
            "hostname": self.net.hostname if self.net else None,
            "set_configs": str(self.env.set_configs) if kolla_start else None,
            "start": START.get(image, []) if kolla_start else [],
            "start_env": START_ENV.get(image, {}),
            "user": self.user(),
            "argv": argv or (None if kolla_start else command),
            "env": self.environment(),
        }

    def hosts(self) -> str:
        """The pod's /etc/hosts: the run's, and a pod of its own network's own names."""
        if self.net is None:
            return self.env.hosts
        return self.env.hosts + f"{self.net.ip} {self.net.fqdn} {self.net.hostname}\n"

    def kolla_command(self) -> str | None:
        """The ``command`` of the container's config.json (None: it has a command)."""
        if self.spec.get("command"):
            return None
        mount = next(
            (
                m["name"]
                for m in self.spec.get("volumeMounts", [])
                if m["mountPath"] == "/var/lib/kolla/config_files"
            ),
            None,
        )
        vol = next((v for v in self.pod.get("volumes", []) if v["name"] == mount), None)
        if vol is None or "configMap" not in vol:
            return None
        cm = self.env.configmaps.get(vol["configMap"]["name"], {})
        return json.loads(cm.get("data", {}).get("config.json", "{}")).get("command")

    # -- running ---------------------------------------------------------------
    def start(self, argv: list[str] | None = None) -> subprocess.Popen:
        spec = self.inns_spec(argv)
        spec_file = self.dir / "spec.json"
        spec_file.write_text(json.dumps(spec, indent=1))
        spec_file.chmod(0o600)
        here = str(Path(__file__).resolve().parent.parent)
        # a pod of its own network: in its network namespace, with its own host name
        net = [] if self.net is None else ["nsenter", f"--net={self.net.netns}"]
        uts = [] if self.net is None else ["-u"]
        self.started_at = time.monotonic()
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [
                    *net,
                    "unshare",
                    "-m",
                    *uts,
                    "--propagation",
                    "private",
                    sys.executable,
                    "-m",
                    "kkc_e2e.inns",
                    str(spec_file),
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={"PATH": os.environ.get("PATH", VENV_PATH), "PYTHONPATH": here},
                start_new_session=True,
            )
        return self.proc

    def post_start(self, timeout: float = 180) -> int | None:
        """The container's lifecycle.postStart exec hook, in a namespace of its own
        with the pod's volumes (as the kubelet runs it beside the container)."""
        return self.hook("postStart", timeout)

    def hook(self, kind: str, timeout: float = 180) -> int | None:
        """The container's lifecycle ``kind`` (postStart, preStop) exec hook, run as the
        kubelet runs it: beside the container, with the pod's volumes; None without one."""
        hook = ((self.spec.get("lifecycle") or {}).get(kind) or {}).get("exec")
        if not hook:
            return None
        hook_ctr = Container(
            self.env,
            self.pod,
            {**self.spec, "command": hook["command"], "args": []},
            f"{self.tag}-{kind.lower()}",
            self.poddir,
            self.net,
        )
        return hook_ctr.run(timeout)

    def run(self, timeout: float, argv: list[str] | None = None) -> int:
        proc = self.start(argv)
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise PodError(f"{self.tag}: did not finish within {timeout:.0f}s") from None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def gone(self) -> bool:
        """Exited for good: not running, and nothing will start it again (a Job's
        container, or one the harness stops); a workload's container in its restart
        back-off is not gone."""
        return not self.alive() and (not self.supervised or self.stopping)

    def up_for(self) -> float:
        """How long its current run has lasted (0 while it does not run)."""
        return time.monotonic() - self.started_at if self.alive() else 0.0

    def reap(self) -> None:
        """SIGKILL what is left of the session of a container whose first process
        exited (the runtime ends the container's other processes with it)."""
        if self.proc is None:
            return
        _signal(self.proc.pid, 9)
        for _ in range(50):
            if not session(self.proc.pid):
                break
            time.sleep(0.2)

    def stop(self) -> None:
        """SIGTERM to every process of the container, and SIGKILL to what is left after the
        pod's terminationGracePeriodSeconds; done when none is left, as the kubelet waits
        for the container (its first process may exit before the rest: RabbitMQ's start
        script before the Erlang VM, which still held its distribution port when the next
        RabbitMQ started on an upgrade)."""
        with self.lock:  # the supervisor does not start it again from now on
            self.stopping = True
        if self.proc is None:
            return
        sid = self.proc.pid  # each container starts in a session of its own
        if self.proc.poll() is not None and not session(sid):
            return
        grace = float(self.pod.get("terminationGracePeriodSeconds", 30))
        _signal(sid, 15)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and (self.proc.poll() is None or session(sid)):
            time.sleep(0.2)
        if self.proc.poll() is None or session(sid):
            _signal(sid, 9)
        self.proc.wait(10)
        for _ in range(50):
            if not session(sid):
                break
            time.sleep(0.2)

    def tail(self, lines: int = 25) -> str:
        try:
            text = self.log.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(text[-lines:])


def session(sid: int, proc: Path = Path("/proc")) -> list[int]:
    """The processes of session SID that still run (zombies are done)."""
    pids = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid pgrp session ...; comm may hold spaces and parentheses
        fields = stat[stat.rindex(")") + 2 :].split()
        if fields[0] != "Z" and int(fields[3]) == sid:
            pids.append(int(entry.name))
    return pids


def _signal(sid: int, signum: int) -> None:
    for pid in [sid, *session(sid)]:
        try:
            os.kill(pid, signum)
        except (ProcessLookupError, PermissionError):
            pass


def shown(argv: list[str]) -> str:
    return shlex.join(argv)


def wait_port(
    port: int, timeout: float, proc: Container | None = None, host: str = "127.0.0.1"
) -> bool:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.gone():
            return False
        try:
            with socket.create_connection((host, port), timeout=1):
                return True
        except OSError:
            time.sleep(0.5)
    return False
