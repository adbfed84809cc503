"""Runs inside ``unshare -m --propagation private``: gives one process its own root
(an overlay of the host's / with a tmpfs on top, so /etc/<service>, /var/lib/kolla and
friends never reach the host), binds the pod's volumes at their mount paths, applies
Kolla's set_configs.py as kolla_start does (as root), then runs the command as the
container's user.

    python3 -m kkc_e2e.inns SPEC.json

SPEC: {"scratch", "trees": [dir copied onto /], "binds": [[src, dest, ro]], "files":
{dest: text}, "set_configs": path|null, "user": name, "argv": [...] | null (null: the
command set_configs wrote to /run_command), "env": {...}}."""

from __future__ import annotations

import json
import os
import pwd
import shlex
import shutil
import socket
import subprocess
import sys
from pathlib import Path

from kkc_e2e import apache

HOST_DIRS = ("/proc", "/dev", "/sys")


def sh(*args: str) -> None:
    subprocess.run(args, check=True)


def enter(spec: dict) -> None:
    scratch = Path(spec["scratch"])
    scratch.mkdir(parents=True, exist_ok=True)
    sh("mount", "-t", "tmpfs", "-o", "mode=0755", "kkc-e2e", str(scratch))
    upper, work, root = scratch / "upper", scratch / "work", scratch / "root"
    for d in (upper, work, root):
        d.mkdir()
    sh(
        "mount",
        "-t",
        "overlay",
        "overlay",
        "-o",
        f"lowerdir=/,upperdir={upper},workdir={work}",
        str(root),
    )
    for d in HOST_DIRS:
        sh("mount", "--rbind", d, f"{root}{d}")
    # the venvs' interpreter may live under /root (pyenv); the service users must
    # reach it, as they reach /usr/bin/python3 in an image (only this copy changes)
    os.chmod(f"{root}/root", 0o755)
    for tree in spec.get("trees", []):  # what the image has below / (image.py)
        shutil.copytree(tree, root, symlinks=True, dirs_exist_ok=True)
    for dest, text in spec.get("files", {}).items():
        path = Path(f"{root}{dest}")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for src, dest, ro in spec.get("binds", []):
        target = Path(f"{root}{dest}")
        if Path(src).is_dir():
            target.mkdir(parents=True, exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.touch()
        sh("mount", "--bind", src, str(target))
        if ro:
            sh("mount", "-o", "remount,bind,ro", str(target))
    os.chroot(root)
    os.chdir("/")
    if spec.get("hostname"):  # a pod of its own network (unshare -u): its pod's name
        socket.sethostname(spec["hostname"])


def main() -> int:
    spec = json.loads(Path(sys.argv[1]).read_text())
    env = dict(spec["env"])
    enter(spec)
    if spec.get("set_configs"):
        # the image's own directories that config.json's permissions name (the
        # Dockerfiles create /var/log/kolla/<service> and the state directories)
        cfg = json.loads(Path("/var/lib/kolla/config_files/config.json").read_text())
        for perm in cfg.get("permissions", []):
            if perm["path"].startswith(("/var/log/kolla/", "/var/lib/")):
                Path(perm["path"]).mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            ["/usr/bin/python3", spec["set_configs"]],
            env={**env, "KOLLA_CONFIG_STRATEGY": env.get("KOLLA_CONFIG_STRATEGY", "COPY_ALWAYS")},
        )
        if done.returncode != 0:
            print(f"kkc-e2e: set_configs.py exited with {done.returncode}", file=sys.stderr)
            return done.returncode
    for step in spec.get("start", []):  # the image's kolla_extend_start (image.START)
        print(f"kkc-e2e: kolla_extend_start step: {shlex.join(step)}", flush=True)
        done = subprocess.run(step, env={**env, **spec.get("start_env", {})})
        if done.returncode != 0:
            print(f"kkc-e2e: {step[0]} exited with {done.returncode}", file=sys.stderr)
            return done.returncode
    argv = spec.get("argv")
    if not argv:
        # kolla_start: exec ${CMD} ${ARGS} (word splitting, no shell)
        argv = shlex.split(Path("/run_command").read_text())
    user = pwd.getpwnam(spec.get("user") or "root")
    if apache.is_httpd(argv) and not shutil.which(argv[0]):
        # no Apache/mod_wsgi here: the same WSGI application and vhost settings under
        # uWSGI, started as root like httpd (it binds, then runs as the vhost's user)
        try:
            argv = apache.uwsgi_argv(apache.vhosts(argv[0]))
        except (apache.ApacheError, OSError) as exc:
            print(f"kkc-e2e: {exc}", file=sys.stderr)
            return 127
        print(f"kkc-e2e: no Apache on this machine; running {shlex.join(argv)}", flush=True)
        user = pwd.getpwnam("root")
    env.setdefault("HOME", user.pw_dir if Path(user.pw_dir).is_dir() else "/tmp")
    env.setdefault("USER", user.pw_name)
    if user.pw_uid != 0:
        os.setgroups(os.getgrouplist(user.pw_name, user.pw_gid))
        os.setgid(user.pw_gid)
        os.setuid(user.pw_uid)
    sys.stdout.flush()
    try:
        os.execvpe(argv[0], argv, env)
    except OSError as exc:
        print(f"kkc-e2e: cannot run {argv[0]}: {exc.strerror}", file=sys.stderr)
        return 127


if __name__ == "__main__":
    sys.exit(main())
