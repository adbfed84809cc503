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


def kkc(root: Path, *args: str) -> str:
    compiler = Path(__file__).resolve().parents[2] / "compiler"
    return _run(
        [
            sys.executable,
            "-c",
            f"import sys; sys.path.insert(0, {str(compiler)!r}); "
            "from kkc.cli import main; sys.argv[0] = 'kkc'; main()",
            *args,
        ],
        root,
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


def prepare(
    repo: Path, scratch: Path, site: str, release: str | None = None, name: str | None = None
) -> Site:
    """Build SITE (optionally as a copy NAME moved to RELEASE) in SCRATCH."""
    scratch.mkdir(parents=True, exist_ok=True)
    for d in COPIED:
        if (repo / d).exists() and not (scratch / d).exists():
            shutil.copytree(repo / d, scratch / d)
    name = name or site
    if release:
        src = scratch / "sites" / site
        dest = scratch / "sites" / name
        if not dest.exists():
            shutil.copytree(src, dest)
        text = (dest / "site.yaml").read_text()
        text = re.sub(r'(?m)^(\s+release:\s*)"?[0-9.]+"?', rf'\g<1>"{release}"', text, count=1)
        text = re.sub(r"(?m)^name:\s*\S+", f"name: {name}", text, count=1)
        (dest / "site.yaml").write_text(text)
    kkc(scratch, "build", name)
    secret_list = json.loads(kkc(scratch, "secrets", name, "-o", "json"))
    objects = [o for o in yaml.safe_load_all(kustomize(scratch / "deploy" / name)) if o]
    site_yaml = yaml.safe_load((scratch / "sites" / name / "site.yaml").read_text())
    return Site(name, str(site_yaml["openstack"]["release"]), scratch, objects, secret_list)


def generated_secrets(site: Site) -> dict[str, dict[str, str]]:
    """Every Secret ``kkc secrets`` lists, with a generated value for each plain key and
    each template key rendered from them; Secrets that a Job creates in the cluster
    (keystone's key repositories) are left to that Job."""
    out: dict[str, dict[str, str]] = {}
    # one value per entry of the secret store (its remote key, else the kolla password
    # it stands for): rabbitmq-password of every service and rabbitmq-secrets' password
    # agree, as they do in a cluster
    store: dict[str, str] = {}
    for secret in site.secret_list:
        if "created in the cluster" in secret.get("source", ""):
            continue
        values: dict[str, str] = {}
        for key in secret["keys"]:
            if "template" not in key:
                remote = (key.get("remoteRef") or {}).get("key") or key.get("kollaPassword")
                if remote is None:
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
