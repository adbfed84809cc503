"""`kkc init SITE`: a new site definition, commented, that `kkc build SITE` builds at once.

A new site gets the keys it must decide (name, namespace, region, release, the public host
names of its services) and comments that say what each key does and where it is
documented; everything else comes from the lower layers (sites/defaults.yaml, the compiler
defaults). With ``--from`` it is a copy of another site's definition (its config/ and
patches/ too), renamed, with a region and host names of its own.

The release is a decision, never a default: without ``--release`` the site inherits the
release sites/defaults.yaml pins, and without either kkc refuses (KKC149). An existing
site is never overwritten (KKC147). Unknown releases, engines and services are KKC148,
listing the valid ones. The new site is loaded and validated before kkc reports success;
should that fail, nothing is left behind."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import siteedit
from .errors import InputError, Problem, did_you_mean
from .loader import check_site_name, list_sites, load_site
from .model import DNS_LABEL_RE, PUBLIC_HOSTS, REQUIRES
from .releases import RELEASES
from .yamlio import load_mapping

CMDLINE = "<command line>"
ENGINES = ("argocd", "flux")
INFRA = ("mariadb", "rabbitmq", "memcached")  # on by default in every site
# what `kkc init` enables without --services: a small cloud that boots servers
DEFAULT_SERVICES = ("keystone", "glance", "placement", "nova", "neutron")
SERVICES = ("keystone", "glance", "placement", "nova", "neutron", "cinder", "heat", "horizon")


@dataclass
class Initialised:
    site: str
    file: str
    release: str
    release_from: str  # "--release" or "sites/defaults.yaml"
    services: list[str]
    added: list[str] = field(default_factory=list)  # services enabled as dependencies
    copied_from: str | None = None

    def lines(self) -> list[str]:
        what = f"a copy of {self.copied_from}" if self.copied_from else "a new site"
        out = [
            f"{self.site}: wrote {self.file} ({what}; OpenStack {self.release} from "
            f"{self.release_from}; services: {', '.join(self.services)})"
        ]
        if self.added:
            out.append(f"{self.site}: also enabled, as dependencies: {', '.join(self.added)}")
        s = self.site
        out += [
            "next:",
            f"  edit {self.file} (host names, region: docs/site-definition.md) or kkc set {s}",
            f"  kkc build {s}                # compile and validate deploy/{s}/",
            f"  kkc diff {s}                 # the rendered objects against the committed output",
            f'  git add sites/{s} && git commit -m "Add {s}" && kkc build {s} --commit',
            f"  kkc bootstrap {s} | kubectl apply -f -   # once, after the merge",
        ]
        return out

    def as_json(self) -> dict[str, Any]:
        return {
            "site": self.site,
            "file": self.file,
            "release": self.release,
            "releaseFrom": self.release_from,
            "services": self.services,
            "dependencies": self.added,
            "from": self.copied_from,
        }


def _bad(code: str, message: str) -> InputError:
    return InputError(Problem(CMDLINE, 1, 1, code, message))


def _choice(kind: str, value: str, valid: list[str] | tuple[str, ...]) -> InputError:
    return _bad(
        "KKC148",
        f'unknown {kind} "{value}"{did_you_mean(value, valid)} (valid: {", ".join(valid)})',
    )


def _check_name(root: Path, name: str) -> None:
    if not DNS_LABEL_RE.match(name) or len(name) > 63:
        check_site_name(root, name)  # KKC122, the message every command gives
    path = root / "sites" / name
    if path.exists():
        what = "site.yaml" if (path / "site.yaml").exists() else "directory"
        raise InputError(
            Problem(
                f"sites/{name}/site.yaml" if what == "site.yaml" else f"sites/{name}",
                1,
                1,
                "KKC147",
                f'site "{name}" already exists ({what}); kkc init never overwrites a site: '
                f"choose another name, or edit it with `kkc set {name} PATH=VALUE`",
            )
        )


def fleet_release(root: Path) -> str | None:
    """The release sites/defaults.yaml pins, if any."""
    path = root / "sites" / "defaults.yaml"
    if not path.is_file():
        return None
    openstack = load_mapping(path, "sites/defaults.yaml").get("openstack")
    release = openstack.get("release") if isinstance(openstack, dict) else None
    return str(release) if release is not None else None


def _release(root: Path, release: str | None) -> tuple[str, str]:
    supported = sorted(RELEASES)
    if release is not None:
        if release not in RELEASES:
            raise _choice("OpenStack release", release, supported)
        return release, "--release"
    pinned = fleet_release(root)
    if pinned is None:
        raise _bad(
            "KKC149",
            "no OpenStack release: pass --release (supported: "
            f"{', '.join(supported)}); sites/defaults.yaml pins none, and kkc has no default "
            "because the release is a decision, never a default",
        )
    return pinned, "sites/defaults.yaml"


def services_with_dependencies(wanted: list[str]) -> tuple[list[str], list[str]]:
    """(the OpenStack services to enable, in kkc's order; those added as dependencies)."""
    chosen: set[str] = set()
    todo = ["keystone", *wanted]
    while todo:
        svc = todo.pop()
        if svc not in chosen:
            chosen.add(svc)
            todo += [r for r in REQUIRES.get(svc, ()) if r not in INFRA]
    ordered = [s for s in SERVICES if s in chosen]
    return ordered, [s for s in ordered if s not in wanted and s != "keystone"]


def _services(services: list[str] | None) -> list[str]:
    if services is None:
        return list(DEFAULT_SERVICES)
    out = []
    for svc in services:
        if svc in INFRA:
            continue  # always on
        if svc not in SERVICES:
            raise _choice("service", svc, [*SERVICES, *INFRA])
        out.append(svc)
    return out


def new_site_text(name: str, release: str | None, engine: str | None, services: list[str]) -> str:
    """The commented site.yaml of a new site (``release`` None: the fleet default's)."""
    hosts = [h for svc in services for h in PUBLIC_HOSTS.get(svc, ())]
    out = [
        f"# {name}: site definition (docs/site-definition.md). Everything not set here comes",
        f"# from sites/defaults.yaml and the compiler defaults: `kkc show {name} --explain PATH`",
        f"# says which file set a value. Edit with `kkc set {name} PATH=VALUE` or by hand.",
        "schemaVersion: 1",
        "# the directory name; also names the Argo CD Application or the Flux objects",
        f"name: {name}",
        "# the Kubernetes namespace of the control plane",
        f"namespace: {name}",
        "# the OpenStack region name (Keystone endpoints)",
        f"region: {name.upper()}",
    ]
    if release is None:
        out += [
            "# openstack.release: the one sites/defaults.yaml pins; pin the site's own with",
            "# `kkc upgrade` (docs/upgrades.md, docs/day-two.md)",
        ]
    else:
        out += [
            "openstack:",
            "  # the OpenStack release: a decision, never a default; change it with",
            "  # `kkc upgrade` (docs/upgrades.md, docs/day-two.md)",
            f'  release: "{release}"',
        ]
    out += [
        "# public endpoints (docs/site-definition.md): one DNS name per public API",
        "endpoints:",
        "  scheme: http  # https with the tls and ingress overlays (docs/overlays.md)",
        "  hosts:",
        *(f"    {h}: {h}.{name}.example.com" for h in hosts),
        "# the OpenStack services (keystone and the infrastructure are always on)",
        "services:",
    ]
    for svc in services:
        if svc == "keystone":
            continue
        out += [f"  {svc}:", "    enabled: true"]
        if svc == "cinder":
            out += [
                "    # lvm: a volume group on one storage node; rbd: Ceph (docs/bases.md)",
                "    backend: lvm",
            ]
    if services == ["keystone"]:
        out += ["  keystone:", "    enabled: true"]
    out += [
        "# config overrides in INI form, as in kolla-ansible (docs/config-overrides.md):",
        "# config: {nova: {DEFAULT: {cpu_allocation_ratio: 4.0}}} or files in config/",
        "# reusable features, e.g. [ha, tls, ingress] (docs/overlays.md)",
        "overlays: []",
    ]
    if engine is not None:
        out += [
            "# the GitOps controller that deploys deploy/<site>/ (docs/gitops.md)",
            "gitops:",
            f"  engine: {engine}",
        ]
    return "\n".join(out) + "\n"


def _copied_text(root: Path, source: str, name: str) -> str:
    """The source site's site.yaml, renamed, with its own region and host names."""
    display = f"sites/{source}/site.yaml"
    text = (root / display).read_text(encoding="utf-8")
    doc: Any = siteedit.parse(text)
    text = siteedit.set_value(text, ("name",), name, display)
    text = siteedit.set_value(text, ("region",), name.upper(), display)
    old_region = str(doc.get("region", "")).lower()
    hosts = (doc.get("endpoints") or {}).get("hosts") or {}
    for key, host in hosts.items():
        labels = str(host).split(".")
        if old_region and old_region in labels[1:]:
            labels[labels.index(old_region, 1)] = name
        else:
            labels.insert(1, name)
        text = siteedit.set_value(text, ("endpoints", "hosts", key), ".".join(labels), display)
    if isinstance(doc.get("secrets"), dict) and "keyPrefix" in doc["secrets"]:
        text = siteedit.set_value(text, ("secrets", "keyPrefix"), f"openstack/{name}/", display)
    return text.replace(f"# {source}:", f"# {name} (from {source}):", 1)


def init(
    root: Path,
    name: str,
    *,
    from_site: str | None = None,
    release: str | None = None,
    engine: str | None = None,
    services: list[str] | None = None,
) -> Initialised:
    """Write sites/<name>/site.yaml (and, with ``from_site``, copies of its config/ and
    patches/) and check that the site loads; on any problem nothing is left behind."""
    _check_name(root, name)
    if engine is not None and engine not in ENGINES:
        raise _choice("GitOps engine", engine, ENGINES)
    if from_site is not None:
        if from_site not in list_sites(root):
            raise _choice("site", from_site, list_sites(root))
        if services is not None:
            raise _bad("KKC148", "--services applies to a new site; with --from, use kkc set")
        text = _copied_text(root, from_site, name)
        display = f"sites/{name}/site.yaml"
        if release is not None:
            if release not in RELEASES:
                raise _choice("OpenStack release", release, sorted(RELEASES))
            text = siteedit.set_value(text, ("openstack", "release"), f'"{release}"', display)
        if engine is not None:
            text = siteedit.set_value(text, ("gitops", "engine"), engine, display)
        chosen, added = [], []
    else:
        chosen, added = services_with_dependencies(_services(services))
        got, _ = _release(root, release)
        text = new_site_text(name, release and got, engine, chosen)
    return _write(root, name, text, from_site, chosen, added, release)


def _write(
    root: Path,
    name: str,
    text: str,
    from_site: str | None,
    chosen: list[str],
    added: list[str],
    release: str | None,
) -> Initialised:
    top = root / "sites" / name
    top.mkdir(parents=True)
    try:
        if from_site is not None:
            for part in ("config", "patches"):
                if (root / "sites" / from_site / part).is_dir():
                    shutil.copytree(root / "sites" / from_site / part, top / part)
        siteedit.write_atomic(top / "site.yaml", text)
        site = load_site(root, name, cross_site=False)
    except BaseException:
        shutil.rmtree(top, ignore_errors=True)
        raise
    origin = site.origins[("openstack", "release")]
    enabled = chosen or [s for s in SERVICES if site.enabled(s)]
    return Initialised(
        site=name,
        file=f"sites/{name}/site.yaml",
        release=site.get("openstack.release"),
        release_from=(
            ("--release" if release else f"sites/{from_site}/site.yaml")
            if origin.layer == "site"
            else origin.path
        ),
        services=enabled,
        added=added,
        copied_from=from_site,
    )
