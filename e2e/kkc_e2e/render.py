"""The site as a controller sees it: ``kkc build`` into a scratch copy of the repository
(the work tree's deploy/ is never touched), ``kustomize build deploy/<site>/``, and the
Secrets that ``kkc secrets SITE`` lists, filled with generated values."""

from __future__ import annotations

import base64
import json
import re
import secrets as pysecrets
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from . import gotmpl

COPIED = ("sites", "base", "overlays")
WAVE = "argocd.argoproj.io/sync-wave"


class RenderError(Exception):
    pass


def _run(argv: list[str], cwd: Path) -> str:
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False, timeout=600)
    if done.returncode != 0:
        raise RenderError(f"{' '.join(argv)} exited with {done.returncode}:\n{done.stderr[-3000:]}")
    return done.stdout


def _kkc_argv(*args: str) -> list[str]:
    compiler = Path(__file__).resolve().parents[2] / "compiler"
    return [
        sys.executable,
        "-c",
        f"import sys; sys.path.insert(0, {str(compiler)!r}); "
        "from kkc.cli import main; sys.argv[0] = 'kkc'; main()",
        *args,
    ]


def kkc(root: Path, *args: str) -> str:
    return _run(_kkc_argv(*args), root)


def kkc_exit(root: Path, *args: str) -> subprocess.CompletedProcess:
    """``kkc ARGS`` in ROOT, whatever its exit code (a refusal is expected to fail)."""
    return subprocess.run(
        _kkc_argv(*args), cwd=root, capture_output=True, text=True, check=False, timeout=600
    )


def kustomize(path: Path) -> str:
    if shutil.which("kustomize"):
        return _run(["kustomize", "build", str(path)], path)
    return _run(["kubectl", "kustomize", str(path)], path)


@dataclass
class Site:
    name: str
    release: str
    root: Path
    objects: list[dict]
    secret_list: list[dict]

    @property
    def namespace(self) -> str:
        return next(o["metadata"]["name"] for o in self.objects if o["kind"] == "Namespace")

    def of_kind(self, kind: str) -> list[dict]:
        return [o for o in self.objects if o["kind"] == kind]

    def waves(self) -> list[int]:
        return sorted({wave(o) for o in self.objects})

    def configmaps(self) -> dict[str, dict]:
        return {o["metadata"]["name"]: o for o in self.of_kind("ConfigMap")}


def wave(obj: dict) -> int:
    return int((obj["metadata"].get("annotations") or {}).get(WAVE, "0"))


def copy_repo(repo: Path, scratch: Path) -> None:
    """The site definitions, bases and overlays of REPO in SCRATCH (once)."""
    scratch.mkdir(parents=True, exist_ok=True)
    for d in COPIED:
        if (repo / d).exists() and not (scratch / d).exists():
            shutil.copytree(repo / d, scratch / d)


def make_variant(scratch: Path, site: str, release: str, name: str) -> Path:
    """sites/NAME in SCRATCH: a copy of SITE with openstack.release RELEASE; its
    site.yaml."""
    src = scratch / "sites" / site
    dest = scratch / "sites" / name
    if not dest.exists():
        shutil.copytree(src, dest)
    text = (dest / "site.yaml").read_text()
    text = re.sub(r'(?m)^(\s+release:\s*)"?[0-9.]+"?', rf'\g<1>"{release}"', text, count=1)
    text = re.sub(r"(?m)^name:\s*\S+", f"name: {name}", text, count=1)
    (dest / "site.yaml").write_text(text)
    return dest / "site.yaml"


def load(scratch: Path, name: str) -> Site:
    """The site NAME as built in SCRATCH's deploy/NAME/: its objects (``kustomize
    build``), the Secrets ``kkc secrets`` lists and the release its site.yaml sets."""
    secret_list = json.loads(kkc(scratch, "secrets", name, "-o", "json"))
    objects = [o for o in yaml.safe_load_all(kustomize(scratch / "deploy" / name)) if o]
    site_yaml = yaml.safe_load((scratch / "sites" / name / "site.yaml").read_text())
    return Site(name, str(site_yaml["openstack"]["release"]), scratch, objects, secret_list)


def prepare(
    repo: Path, scratch: Path, site: str, release: str | None = None, name: str | None = None
) -> Site:
    """Build SITE (optionally as a copy NAME moved to RELEASE) in SCRATCH."""
    copy_repo(repo, scratch)
    name = name or site
    if release:
        make_variant(scratch, site, release, name)
    kkc(scratch, "build", name)
    return load(scratch, name)


def generated_secrets(
    site: Site, previous: dict[str, dict[str, str]] | None = None
) -> dict[str, dict[str, str]]:
    """Every Secret ``kkc secrets`` lists, with a generated value for each plain key and
    each template key rendered from them; Secrets that a Job creates in the cluster
    (keystone's key repositories) are left to that Job. With PREVIOUS (the values of the
    site's last run, before an upgrade), a key that had a value keeps it, as the Secrets
    of a cluster do: only a key the new output adds gets a new value."""
    previous = previous or {}
    out: dict[str, dict[str, str]] = {}
    # one value per entry of the secret store (its remote key, else the kolla password
    # it stands for): rabbitmq-password of every service and rabbitmq-secrets' password
    # agree, as they do in a cluster
    store: dict[str, str] = {}
    plain = [
        (secret["name"], key)
        for secret in site.secret_list
        if "created in the cluster" not in secret.get("source", "")
        for key in secret["keys"]
        if "template" not in key
    ]
    for name, key in plain:  # the kept values first: a new key of a kept entry gets it
        remote = (key.get("remoteRef") or {}).get("key") or key.get("kollaPassword")
        kept = previous.get(name, {}).get(key["key"])
        if kept is not None and remote is not None:
            store.setdefault(remote, kept)
    for secret in site.secret_list:
        if "created in the cluster" in secret.get("source", ""):
            continue
        values: dict[str, str] = {}
        kept = previous.get(secret["name"], {})
        for key in secret["keys"]:
            if "template" not in key:
                remote = (key.get("remoteRef") or {}).get("key") or key.get("kollaPassword")
                if key["key"] in kept:
                    values[key["key"]] = kept[key["key"]]
                elif remote is None:
                    values[key["key"]] = _generated(key["key"])
                else:
                    values[key["key"]] = store.setdefault(remote, _generated(key["key"]))
        for key in secret["keys"]:
            if "template" in key:
                values[key["key"]] = gotmpl.render(key["template"], values)
        out[secret["name"]] = values
    return out


def _generated(key: str) -> str:
    if key.endswith(".keyring"):  # a Ceph keyring as `ceph auth get-or-create` prints it
        client = key.removeprefix("ceph.").removesuffix(".keyring")
        secret = base64.b64encode(pysecrets.token_bytes(28)).decode()
        return f"[{client}]\n\tkey = {secret}\n"
    return pysecrets.token_hex(16)


def hostnames(site: Site) -> list[str]:
    """Every name a pod of the site may resolve: Services (short, namespaced, svc,
    cluster.local), StatefulSet pods behind their headless Service, and the URL hosts
    the rendered output names (the public endpoints)."""
    ns = site.namespace
    names: set[str] = set()

    def add(short: str) -> None:
        names.update(
            {short, f"{short}.{ns}", f"{short}.{ns}.svc", f"{short}.{ns}.svc.cluster.local"}
        )

    for svc in site.of_kind("Service"):
        add(svc["metadata"]["name"])
    for sts in site.of_kind("StatefulSet"):
        for i in range(int(sts["spec"].get("replicas", 1))):
            add(f"{sts['metadata']['name']}-{i}.{sts['spec'].get('serviceName', '')}")
    text = yaml.safe_dump_all(site.objects)
    for host in re.findall(r"//([a-z0-9][a-z0-9.-]*[a-z0-9])", text):
        if not re.fullmatch(r"[0-9.]+", host):
            names.add(host)
    return sorted(names)
