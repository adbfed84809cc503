"""The files a Kolla image adds to its root besides the Python packages: what the
Dockerfiles of the image's chain (``<service>-api`` -> ``<service>-base``) copy from the
project's source tree into ``/etc/<service>`` (api-paste.ini, policy and rootwrap files,
which pip does not install), and the Debian packages whose data the service reads (the
noVNC web files of nova-novncproxy).

The harness replays those Dockerfile steps (``mkdir -p``, ``cp [-r]``, ``mv`` and
``COPY`` into ``/etc``) of the release's own kolla package on a staging tree, with the
source tree taken from the release's sdist, and copies that tree into the container's
private root before ``set_configs.py`` runs, as the image has it."""

from __future__ import annotations

import glob
import re
import shutil
import subprocess
import tarfile
from pathlib import Path

# Chain links that add nothing of the service's own (the distro base and the Python base).
GENERIC = ("base", "openstack-base")
# Debian packages of an image whose files the harness unpacks into its tree (data only,
# no maintainer scripts): the ones a service reads at start.
UNPACK_DEBS = ("novnc",)


# What an image's kolla_extend_start does before the command, where the service cannot
# start without it (horizon: the compressed static files for COMPRESS_OFFLINE), and the
# directories those steps write in the image's venv (each container gets its own).
_DASHBOARD = "/var/lib/kolla/venv/lib/python3/site-packages/openstack_dashboard"
_PYTHON = "/var/lib/kolla/venv/bin/python3"
START = {
    "horizon": [
        # the venv's python by its container path (a console script's shebang names
        # the venv's host path, and the steps must write below /var/lib/kolla/venv)
        [_PYTHON, "-m", "django", "collectstatic", "--noinput", "--clear", "-v0"],
        [_PYTHON, "-m", "django", "compress", "--force", "-v0"],
        # the key store the steps above created as root (local_settings.py), for the
        # WSGI processes that run as horizon
        [
            "/bin/sh",
            "-c",
            f'f={_DASHBOARD}/local/.secret_key_store; [ ! -f "$f" ] || chown horizon "$f"',
        ],
    ],
}
START_ENV = {"horizon": {"DJANGO_SETTINGS_MODULE": "openstack_dashboard.settings"}}
# Directories of the venv that the image writes at start (the static root, the key store
# of local_settings.py): each container gets a copy of its own, bound read-write.
WRITABLE = {
    "horizon": [
        "/var/lib/kolla/venv/lib/python3/site-packages/static",
        f"{_DASHBOARD}/local",
    ]
}


class ImageError(Exception):
    pass


def dockerfiles(docker: Path) -> dict[str, Path]:
    return {p.parent.name: p for p in sorted(docker.glob("**/Dockerfile.j2"))}


def chain(docker: Path, image: str) -> list[Path]:
    """The Dockerfiles of ``image`` and its parents, the first parent first."""
    files = dockerfiles(docker)
    out: list[Path] = []
    name: str | None = image
    while name in files and name not in GENERIC:
        out.append(files[name])
        m = re.search(r"^FROM\s+.*?([A-Za-z0-9-]+):", files[name].read_text(), re.M)
        name = m.group(1) if m else None
    return out[::-1]


def steps(dockerfile: Path) -> list[tuple[str, list[str]]]:
    """The ``COPY`` instructions and the shell commands of the ``RUN`` instructions
    (split on ``&&``), each as (verb, arguments); Jinja expressions are left as text."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    out: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("COPY "):
            out.append(("COPY", line.split()[1:]))
        elif line.startswith("RUN "):
            for cmd in line[4:].split("&&"):
                words = cmd.split()
                if words:
                    out.append((words[0], words[1:]))
    return out


def packages(dockerfile: Path) -> list[str]:
    """Names in the ``{% set <image>_packages = [...] %}`` lists of a Dockerfile."""
    found: list[str] = []
    lists = r"\{%\s*set\s+\w+_packages\s*=\s*\[(.*?)\]"
    for body in re.findall(lists, dockerfile.read_text(), re.S):
        found += re.findall(r"'([^']+)'", body)
    return found


def _source(sdists: Path, project: str, srcdir: Path) -> Path | None:
    """The unpacked source tree of ``project`` (``/nova`` in the Dockerfile), from its
    sdist (``nova-33.0.2.tar.gz``, ``openstack_heat-26.0.2.tar.gz``); None if absent."""
    want = project.replace("-", "_")
    for sdist in sorted(sdists.glob("*.tar.gz")):
        m = re.match(r"(?:openstack[_-])?(.+?)-(\d[^-]*)\.tar\.gz$", sdist.name)
        if not m or m.group(1).replace("-", "_").lower() != want:
            continue
        top = srcdir / sdist.name.removesuffix(".tar.gz")
        if not top.exists():
            with tarfile.open(sdist) as tar:
                tar.extractall(srcdir, filter="data")
        return top
    return None


class Stager:
    """Replays the Dockerfile steps that write below ``/etc`` on a staging root."""

    def __init__(self, root: Path, sdists: Path, srcdir: Path, venv: Path, dockerdir: Path):
        self.root, self.sdists, self.srcdir = root, sdists, srcdir
        self.venv, self.dockerdir = venv, dockerdir

    def path(self, image_path: str) -> Path | None:
        """Where an image path is here: the staging root for ``/etc``, the release venv
        for ``/var/lib/kolla/venv``, the sdist for ``/<project>/``; None otherwise."""
        if image_path.startswith("/etc/"):
            return self.root / image_path.lstrip("/")
        if image_path.startswith("/var/lib/kolla/venv/"):
            return self.venv / image_path.removeprefix("/var/lib/kolla/venv/")
        m = re.match(r"^/([A-Za-z0-9_-]+)(/.*)?$", image_path)
        if m:
            top = _source(self.sdists, m.group(1), self.srcdir)
            if top is not None:
                return Path(str(top) + (m.group(2) or ""))
            # no sdist (horizon comes as a wheel): the package's data, where installed
            for site in sorted(self.venv.glob("lib/python3.*/site-packages")):
                rest = (m.group(2) or "").lstrip("/")
                if rest and (site / rest.split("/")[0]).is_dir():
                    return site / rest
        return None

    def writable(self, image_path: str) -> bool:
        return image_path.startswith("/etc/") and not image_path.startswith("/etc/sudoers")

    def run(self, verb: str, args: list[str]) -> None:
        if verb == "mkdir":
            for a in args:
                if a != "-p" and self.writable(a):
                    self.path(a).mkdir(parents=True, exist_ok=True)
        elif verb == "cp":
            self.cp([a for a in args if not a.startswith("-")])
        elif verb == "mv" and len(args) == 2 and all(self.writable(a) for a in args):
            src, dest = self.path(args[0].rstrip("/")), self.path(args[1].rstrip("/"))
            if src.exists():
                shutil.move(src, dest)
        elif verb == "COPY" and len(args) == 2 and self.writable(args[1]):
            src = self.dockerdir / args[0]
            if src.exists():
                self.copy(src, self.path(args[1]), into=args[1].endswith("/"))

    def cp(self, args: list[str]) -> None:
        if len(args) != 2 or not self.writable(args[1]):
            return
        src = self.path(args[0])
        dest = self.path(args[1])
        if src is None:
            return
        found = sorted(glob.glob(str(src)))
        for item in found:
            self.copy(Path(item), dest, into=args[1].endswith("/") or len(found) > 1)

    @staticmethod
    def copy(src: Path, dest: Path, into: bool) -> None:
        target = dest / src.name if into or dest.is_dir() else dest
        target.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, target, symlinks=True, dirs_exist_ok=True)
        else:
            shutil.copy2(src, target)


def stage(image: str, docker: Path, venv: Path, debs: Path, out: Path) -> Path:
    """The tree of files ``image`` adds below ``/`` (see the module's docstring), built
    once in ``out/<image>``."""
    root = out / image
    if root.exists():
        return root
    tmp = out / f".{image}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    sdists = venv / "work" / "sdist"
    srcdir = out / ".src"
    srcdir.mkdir(exist_ok=True)
    for dockerfile in chain(docker, image):
        stager = Stager(tmp, sdists, srcdir, venv, dockerfile.parent)
        for verb, args in steps(dockerfile):
            stager.run(verb, args)
        for pkg in packages(dockerfile):
            if pkg in UNPACK_DEBS:
                unpack_deb(pkg, debs, tmp)
    tmp.rename(root)
    return root


def unpack_deb(package: str, debs: Path, root: Path) -> None:
    found = sorted(debs.glob(f"{package}_*.deb"))
    if not found:
        raise ImageError(f"{package}: no {package}_*.deb in {debs} (apt-get download {package})")
    subprocess.run(["dpkg-deb", "-x", str(found[-1]), str(root)], check=True)
