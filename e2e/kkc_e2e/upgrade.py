"""The upgrade scenario of ``make e2e`` (docs/e2e.md): a copy of site-b on 2025.1 is
brought up and given data through the real APIs (a project, a user, an image, a network,
a flavor); then ``kkc upgrade`` moves it one hop at a time (2026.1, a SLURP skip, then
2026.2), and each hop's output runs as its controller runs it, on the same MariaDB,
RabbitMQ and OVN data: its Jobs (twice each) and its workloads, wave by wave, with the
hop's own release venv. After each hop the data must still be there and be served by
the new APIs. A fresh copy must be refused 2025.1 -> 2026.2."""

from __future__ import annotations

import hashlib
import secrets as pysecrets
import subprocess
from collections.abc import Callable
from pathlib import Path

from kkc import upgradepath

from . import apis, bringup, checks, render, venvs
from .kube import KubeStandIn

SITE = "site-b"
NAME = "site-b-upgrade"  # the copy of SITE the scenario upgrades
START = "2025.1"
TARGET = "2026.2"
DATA_NAME = "kkc-e2e-upgrade"


def hops(start: str, target: str) -> list[str]:
    """The releases an upgrade from START to TARGET goes through, TARGET last: each hop
    the furthest release kkc's own path rules (kkc.upgradepath) accept from the last."""
    f = upgradepath.facts()
    order = f.series.index
    out: list[str] = []
    at = start
    while at != target:
        allowed = [
            r
            for r in f.supported
            if order(at) < order(r) <= order(target) and upgradepath.refusal(at, r) is None
        ]
        if not allowed:
            raise ValueError(f"kkc allows no upgrade from {at} towards {target}")
        at = max(allowed, key=order)
        out.append(at)
    return out


def refusal_problem(done: subprocess.CompletedProcess, through: str) -> str:
    """'' when ``kkc upgrade`` refused as it must: exit 2, nothing on stdout, one line on
    stderr (KKC190) that names THROUGH, the release to upgrade to first; else what is
    wrong."""
    lines = done.stderr.splitlines()
    if done.returncode != 2:
        return f"exit {done.returncode}, not 2: {done.stderr.strip()[:300]}"
    if done.stdout.strip():
        return f"wrote to stdout: {done.stdout.strip()[:200]}"
    if len(lines) != 1:
        return f"{len(lines)} lines on stderr, not one: {done.stderr.strip()[:300]}"
    if "KKC190" not in lines[0] or f"upgrade to {through} first" not in lines[0]:
        return f"the refusal does not name {through} (KKC190): {lines[0]}"
    return ""


def check_refusal(run: bringup.Run, root: Path, repo: Path) -> None:
    """``kkc upgrade`` START -> TARGET on a fresh copy: refused, and nothing written."""
    render.copy_repo(root, repo)
    site_yaml = render.make_variant(repo, SITE, START, NAME)
    before = site_yaml.read_bytes()
    done = render.kkc_exit(repo, "upgrade", NAME, "--to", TARGET)
    problem = refusal_problem(done, hops(START, TARGET)[0])
    if not problem and site_yaml.read_bytes() != before:
        problem = "site.yaml changed"
    if not problem and (repo / "deploy" / NAME).exists():
        problem = f"deploy/{NAME}/ written"
    run.record(
        f"kkc upgrade {NAME} --to {TARGET} from {START} refused (exit 2, one line)",
        not problem,
        problem or done.stderr.strip(),
    )


# -- the data ---------------------------------------------------------------------
class Data:
    """What the scenario created on START, by kind: the ids and what to compare."""

    def __init__(self) -> None:
        self.password = pysecrets.token_hex(16)  # the user's (never printed)
        self.image = pysecrets.token_bytes(4096)  # the image's data
        self.ids: dict[str, dict[str, str]] = {}


def _urls(run: bringup.Run) -> tuple[str, dict, Callable[[str], str]]:
    tok, body = apis.admin(run)
    return tok, body, lambda kind: checks.endpoint(body, kind).rstrip("/")


def _keystone(run: bringup.Run) -> str:
    return f"http://keystone-api.{run.site.namespace}.svc:5000"


def _create_identity(run: bringup.Run, data: Data, tok: str, url) -> str:
    ks = f"{_keystone(run)}/v3"
    project = checks.call(
        "POST",
        f"{ks}/projects",
        tok,
        {"project": {"name": DATA_NAME, "domain_id": "default"}},
        expect=(201,),
    )["project"]
    data.ids["project"] = {"id": project["id"]}
    user = checks.call(
        "POST",
        f"{ks}/users",
        tok,
        {
            "user": {
                "name": DATA_NAME,
                "domain_id": "default",
                "password": data.password,
                "default_project_id": project["id"],
            }
        },
        expect=(201,),
    )["user"]
    role = checks.call("GET", f"{ks}/roles?name=member", tok)["roles"][0]
    checks.call(
        "PUT",
        f"{ks}/projects/{project['id']}/users/{user['id']}/roles/{role['id']}",
        tok,
        expect=(204,),
    )
    data.ids["user"] = {"id": user["id"]}
    return f"project {project['id']}, user {user['id']} with role member on it"


def _create_image(run: bringup.Run, data: Data, tok: str, url) -> str:
    glance = url("image")
    img = checks.call(
        "POST",
        f"{glance}/v2/images",
        tok,
        {"name": DATA_NAME, "disk_format": "raw", "container_format": "bare"},
        expect=(201,),
    )
    checks.call_bytes("PUT", f"{glance}/v2/images/{img['id']}/file", tok, data.image, (204,))
    data.ids["image"] = {"id": img["id"]}
    return f"image {img['id']} with {len(data.image)} bytes of data"


def _create_network(run: bringup.Run, data: Data, tok: str, url) -> str:
    neutron = url("network")
    net = checks.call(
        "POST", f"{neutron}/v2.0/networks", tok, {"network": {"name": DATA_NAME}}, expect=(201,)
    )["network"]
    sub = checks.call(
        "POST",
        f"{neutron}/v2.0/subnets",
        tok,
        {
            "subnet": {
                "network_id": net["id"],
                "ip_version": 4,
                "cidr": "198.51.100.0/24",
                "name": DATA_NAME,
            }
        },
        expect=(201,),
    )["subnet"]
    data.ids["network"] = {"id": net["id"], "subnet": sub["id"]}
    return f"network {net['id']} with subnet {sub['cidr']}"


def _create_flavor(run: bringup.Run, data: Data, tok: str, url) -> str:
    flavor = checks.call(
        "POST",
        f"{url('compute')}/flavors",
        tok,
        {"flavor": {"name": DATA_NAME, "ram": 512, "vcpus": 1, "disk": 1}},
    )["flavor"]
    data.ids["flavor"] = {"id": flavor["id"]}
    return f"flavor {flavor['id']} (512 MB, 1 vCPU, 1 GB)"


def _check_identity(run: bringup.Run, data: Data, tok: str, url) -> str:
    ks = f"{_keystone(run)}/v3"
    pid, uid = data.ids["project"]["id"], data.ids["user"]["id"]
    listed = checks.call("GET", f"{ks}/projects?name={DATA_NAME}", tok)["projects"]
    if [p["id"] for p in listed] != [pid]:
        raise checks.CheckError(f"projects named {DATA_NAME}: {[p['id'] for p in listed]}")
    checks.call("GET", f"{ks}/projects/{pid}", tok)
    users = checks.call("GET", f"{ks}/users?name={DATA_NAME}", tok)["users"]
    if [u["id"] for u in users] != [uid]:
        raise checks.CheckError(f"users named {DATA_NAME}: {[u['id'] for u in users]}")
    if checks.call("GET", f"{ks}/users/{uid}", tok)["user"]["default_project_id"] != pid:
        raise checks.CheckError("the user's default project changed")
    # the user's password and role assignment: a token scoped to the project
    _, body = checks.token(_keystone(run), DATA_NAME, data.password, DATA_NAME)
    roles = sorted(r["name"] for r in body.get("roles", []))
    if "member" not in roles:
        raise checks.CheckError(f"the user's token has roles {roles}")
    return f"project {pid} and user {uid} listed and shown; the user's token has {roles}"


def _check_image(run: bringup.Run, data: Data, tok: str, url) -> str:
    glance, iid = url("image"), data.ids["image"]["id"]
    listed = checks.call("GET", f"{glance}/v2/images?name={DATA_NAME}", tok)["images"]
    if iid not in [i["id"] for i in listed]:
        raise checks.CheckError(f"image {iid} not listed")
    img = checks.call("GET", f"{glance}/v2/images/{iid}", tok)
    md5 = hashlib.md5(data.image, usedforsecurity=False).hexdigest()
    if img["status"] != "active" or img.get("checksum") != md5:
        raise checks.CheckError(f"image {iid}: {img['status']}, checksum {img.get('checksum')}")
    if checks.call_bytes("GET", f"{glance}/v2/images/{iid}/file", tok) != data.image:
        raise checks.CheckError(f"image {iid}: the downloaded data differ")
    return f"image {iid} listed, shown (active, checksum {md5}) and its data downloaded"


def _check_network(run: bringup.Run, data: Data, tok: str, url) -> str:
    neutron, ids = url("network"), data.ids["network"]
    listed = checks.call("GET", f"{neutron}/v2.0/networks?name={DATA_NAME}", tok)["networks"]
    if ids["id"] not in [n["id"] for n in listed]:
        raise checks.CheckError(f"network {ids['id']} not listed")
    net = checks.call("GET", f"{neutron}/v2.0/networks/{ids['id']}", tok)["network"]
    sub = checks.call("GET", f"{neutron}/v2.0/subnets/{ids['subnet']}", tok)["subnet"]
    if net["subnets"] != [ids["subnet"]] or sub["cidr"] != "198.51.100.0/24":
        raise checks.CheckError(f"network {ids['id']}: subnets {net['subnets']}, {sub['cidr']}")
    return f"network {ids['id']} listed and shown with subnet {sub['cidr']}"


def _check_flavor(run: bringup.Run, data: Data, tok: str, url) -> str:
    nova, fid = url("compute"), data.ids["flavor"]["id"]
    listed = checks.call("GET", f"{nova}/flavors", tok)["flavors"]
    if fid not in [f["id"] for f in listed]:
        raise checks.CheckError(f"flavor {fid} not listed")
    flavor = checks.call("GET", f"{nova}/flavors/{fid}", tok)["flavor"]
    if (flavor["name"], flavor["ram"], flavor["vcpus"], flavor["disk"]) != (DATA_NAME, 512, 1, 1):
        raise checks.CheckError(f"flavor {fid}: {flavor}")
    return f"flavor {fid} listed and shown (512 MB, 1 vCPU, 1 GB)"


# (what, the service whose API serves it, the ids it creates, create, check); identity
# first: the user's project must exist
DATA = (
    ("project and user", "keystone", ("project", "user"), _create_identity, _check_identity),
    ("image", "glance", ("image",), _create_image, _check_image),
    ("network", "neutron", ("network",), _create_network, _check_network),
    ("flavor", "nova", ("flavor",), _create_flavor, _check_flavor),
)


def create_data(run: bringup.Run) -> Data:
    data = Data()
    for what, service, _, create, _ in DATA:
        try:
            tok, _, url = _urls(run)
            run.record(f"create {what} through {service}'s API", True, create(run, data, tok, url))
        except (checks.CheckError, KeyError, IndexError, ValueError) as exc:
            run.record(f"create {what} through {service}'s API", False, str(exc))
    return data


def check_data(run: bringup.Run, data: Data) -> None:
    """The data created on START, listed and shown by the running release's APIs."""
    for what, service, ids, _, check in DATA:
        name = f"{what} of {START} served by {service} {run.site.release}"
        if not all(i in data.ids for i in ids):
            run.record(name, False, f"not created on {START}")
            continue
        try:
            tok, _, url = _urls(run)
            run.record(name, True, check(run, data, tok, url))
        except (checks.CheckError, KeyError, IndexError, ValueError) as exc:
            run.record(name, False, str(exc))


# -- the hops -----------------------------------------------------------------------
class Releases:
    """The venv and Kolla set_configs.py of each release."""

    def __init__(self, venv_base: Path, kolla_dir: Path) -> None:
        self.venv_base, self.kolla_dir = venv_base, kolla_dir

    def venv(self, release: str) -> Path:
        return self.venv_base / f"e2e-{release}"

    def set_configs(self, release: str) -> Path:
        return venvs.set_configs(release, self.kolla_dir)


def upgrade_to(run: bringup.Run, repo: Path, release: str, workdir: Path, rel: Releases) -> bool:
    """``kkc upgrade`` to RELEASE in REPO (it edits site.yaml and builds), then RUN moves
    to the new output: its Secrets keep their values, its claims their data."""
    done = render.kkc_exit(repo, "upgrade", NAME, "--to", release)
    first = (done.stdout.splitlines() or [""])[0]
    if not run.record(
        f"kkc upgrade {NAME} --to {release}",
        done.returncode == 0,
        first if done.returncode == 0 else f"exit {done.returncode}: {done.stderr[-2000:]}",
    ):
        return False
    try:
        site = render.load(repo, NAME)
    except render.RenderError as exc:
        return run.record(f"render {NAME} on {release}", False, str(exc))
    if site.release != release:
        return run.record(f"site.yaml sets {release}", False, f"it sets {site.release}")
    env = bringup.new_env(
        site, workdir / release, rel.venv(release), rel.set_configs(release), run.env.kube, run.env
    )
    run.site, run.env, run.hop = site, env, release
    return True


def scenario(root: Path, scratch: Path, rel: Releases) -> bringup.Run:
    """The whole scenario (see the module's docstring); raises render.RenderError when
    the START copy does not build."""
    repo = scratch / "upgrade-repo"
    render.copy_repo(root, repo)
    render.make_variant(repo, SITE, START, NAME)
    render.kkc(repo, "build", NAME)
    site = render.load(repo, NAME)
    workdir = scratch / NAME
    kube = KubeStandIn(workdir / "kube", site.namespace)
    env = bringup.new_env(site, workdir / START, rel.venv(START), rel.set_configs(START), kube)
    run = bringup.Run(site, env, hop=START)
    check_refusal(run, root, scratch / "refusal-repo")
    bringup.check_options(run)
    with kube:
        try:
            bringup.walk(run)
            data = create_data(run)
            for release in hops(START, TARGET):
                if not upgrade_to(run, repo, release, workdir, rel):
                    break
                bringup.check_options(run)
                bringup.walk(run)
                check_data(run, data)
        finally:
            run.stop_all()
    return run
