"""``python -m kkc_e2e``: bring up every example site (see docs/e2e.md).

The whole run happens in private PID, mount and network namespaces (``unshare -p -m
-n``): the network has only a loopback interface, so no port outside loopback is ever
used, and when the harness exits the kernel ends every process it started."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# (site, release of the variant or None, name of the variant)
SITES = {
    "site-b": ("site-b", None, None),
    "site-b-2026.2": ("site-b", "2026.2", "site-b-2026-2"),
    "site-a": ("site-a", None, None),
}
APT = (
    "mariadb-server",
    "rabbitmq-server",
    "memcached",
    "ovn-central",
    "openvswitch-switch",
    "openssl",
    "iproute2",
    "util-linux",
)
# What runs nowhere here, listed in every summary.
NOT_HERE = [
    ("nova-compute with libvirt", "no KVM/libvirt hypervisor on this machine"),
    (
        "Open vSwitch datapath (ovs-vswitchd, ovn-controller, metadata agent)",
        "no openvswitch kernel datapath in this sandbox",
    ),
    ("cinder-volume (LVM/iSCSI)", "no block devices, LVM or iSCSI target here"),
    ("Ceph", "no Ceph cluster here"),
]


def download_debs(debs: Path) -> None:
    """The Debian packages whose files the harness unpacks into an image's tree
    (image.UNPACK_DEBS), fetched with ``apt-get download`` (the inner run has no
    network)."""
    from .image import UNPACK_DEBS

    debs.mkdir(parents=True, exist_ok=True)
    for pkg in UNPACK_DEBS:
        if not sorted(debs.glob(f"{pkg}_*.deb")):
            print(f"e2e: apt-get download {pkg}", flush=True)
            subprocess.run(["apt-get", "download", "-qq", pkg], check=True, cwd=debs)


def install_packages() -> None:
    missing = [
        p
        for p in APT
        if subprocess.run(
            ["dpkg-query", "-W", "-f=${Status}", p], capture_output=True, text=True
        ).stdout
        != "install ok installed"
    ]
    if not missing:
        return
    print(f"e2e: installing {' '.join(missing)}", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    # policy-rc.d keeps the packages' system services from starting
    policy = Path("/usr/sbin/policy-rc.d")
    made = not policy.exists()
    if made:
        policy.write_text("#!/bin/sh\nexit 101\n")
        policy.chmod(0o755)
    try:
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing],
            check=True,
            env=env,
        )
    finally:
        if made:
            policy.unlink()


def in_namespaces(argv: list[str]) -> int:
    """Re-run this command inside new PID, mount and network namespaces. The inner
    harness is PID 1 there: when it ends, for any reason, the kernel kills every process
    it started; ``--kill-child`` ends it when this process is killed."""
    import signal

    env = {**os.environ, "KKC_E2E_INNER": "1"}
    cmd = [
        "unshare",
        "--pid",
        "--fork",
        "--kill-child",
        "--mount-proc",
        "--mount",
        "--net",
        "--propagation",
        "private",
        sys.executable,
        "-m",
        "kkc_e2e",
        *argv,
    ]
    proc = subprocess.Popen(cmd, env=env)

    def stop(signum, frame):  # unshare ignores SIGTERM while it waits: SIGKILL it
        proc.kill()
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    return proc.wait()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="kkc-e2e", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--site",
        action="append",
        choices=sorted(SITES),
        help="site to bring up (repeatable; default: all)",
    )
    parser.add_argument(
        "--kolla-dir",
        type=Path,
        default=Path(os.environ.get("KKC_E2E_KOLLA_DIR", ROOT / ".venv" / "kolla")),
    )
    parser.add_argument("--venv-base", type=Path, default=ROOT / ".venv")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    parser.add_argument("--until-wave", type=int, help="stop after this sync-wave")
    parser.add_argument(
        "--upgrade",
        action="store_true",
        help="run the upgrade scenario (site-b from 2025.1 to 2026.1 and 2026.2, with "
        "data; part of the default run): alone unless --site is given too",
    )
    parser.add_argument(
        "--no-upgrade", action="store_true", help="leave the upgrade scenario out of the run"
    )
    parser.add_argument(
        "--no-install", action="store_true", help="do not install Debian packages or venvs"
    )
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("e2e: must run as root (it mounts and starts services)", file=sys.stderr)
        return 2
    chosen, upgrade = choose(args.site, args.upgrade, args.no_upgrade)
    if not os.environ.get("KKC_E2E_INNER"):
        if not args.no_install:
            t0 = time.monotonic()
            install_packages()
            download_debs(args.venv_base / "e2e-debs")
            from . import venvs

            releases = venv_releases(chosen, upgrade)
            for release, horizon in releases.items():
                print(f"e2e: venv for {release}", flush=True)
                venvs.ensure(release, args.venv_base, horizon=horizon)
            print(f"e2e: install took {time.monotonic() - t0:.0f} s", flush=True)
        return in_namespaces([*argv, "--no-install"] if "--no-install" not in argv else argv)
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    import signal

    def stop(signum, frame):  # PID 1 of the namespace: default actions do not apply
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)
    from . import bringup, render, venvs
    from . import upgrade as upgrade_scenario

    started = time.monotonic()
    scratch = Path(tempfile.mkdtemp(prefix="kkc-e2e-"))
    scratch.chmod(0o755)  # the services' users read their volumes below it
    passed = failed = 0
    lines: list[str] = []
    try:
        for key in chosen:
            site_name, release, variant = SITES[key]
            t0 = time.monotonic()
            try:
                site = render.prepare(ROOT, scratch / "repo", site_name, release, variant)
            except render.RenderError as exc:
                print(f"[{key}] FAIL render: {exc}", flush=True)
                failed += 1
                continue
            venv = args.venv_base / f"e2e-{site.release}"
            run = bringup.bring_up(
                site,
                scratch / site.name,
                venv,
                venvs.set_configs(site.release, args.kolla_dir),
                args.until_wave,
            )
            title = f"{site.name} ({site.release})"
            passed, failed = report(lines, title, run, time.monotonic() - t0, passed, failed)
        if upgrade:
            t0 = time.monotonic()
            releases = upgrade_scenario.Releases(args.venv_base, args.kolla_dir)
            try:
                run = upgrade_scenario.scenario(ROOT, scratch / "upgrade", releases)
            except render.RenderError as exc:
                print(f"[upgrade] FAIL render: {exc}", flush=True)
                failed += 1
            else:
                path = " -> ".join(
                    [upgrade_scenario.START]
                    + upgrade_scenario.hops(upgrade_scenario.START, upgrade_scenario.TARGET)
                )
                title = f"{upgrade_scenario.NAME} (upgrade {path})"
                passed, failed = report(lines, title, run, time.monotonic() - t0, passed, failed)
    finally:
        if args.keep:
            print(f"e2e: scratch directory kept: {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)
    print("\n== e2e summary")
    for line in lines:
        print(line)
    for name, why in NOT_HERE:
        print(f"not run on this machine: {name}: {why}")
    print(f"total time {time.monotonic() - started:.0f} s")
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 and passed else 1


def choose(sites: list[str] | None, upgrade: bool, no_upgrade: bool) -> tuple[list[str], bool]:
    """The sites to bring up and whether the upgrade scenario runs: every site and the
    scenario by default (what CI runs); --site names sites (without the scenario unless
    --upgrade is given too); --upgrade alone runs only the scenario; --no-upgrade leaves
    it out."""
    chosen = sites or ([] if upgrade else list(SITES))
    return chosen, (upgrade or not sites) and not no_upgrade


def venv_releases(chosen: list[str], upgrade: bool) -> dict[str, bool]:
    """The release venvs the run needs: release -> whether a site of it runs horizon."""
    from . import upgrade as upgrade_scenario

    releases: dict[str, bool] = {}
    for key in chosen:
        site, release, _ = SITES[key]
        release = release or _site(site)["openstack"]["release"]
        services = _site(site).get("services") or {}
        horizon = bool((services.get("horizon") or {}).get("enabled"))
        releases[release] = releases.get(release, False) or horizon
    if upgrade:
        start = upgrade_scenario.START
        for release in [start, *upgrade_scenario.hops(start, upgrade_scenario.TARGET)]:
            releases.setdefault(release, False)  # site-b runs no horizon
    return releases


def report(lines: list[str], title: str, run, seconds: float, passed: int, failed: int):
    """The summary lines of one run (a site, or the upgrade scenario); the new totals."""
    p = sum(r.ok for r in run.results)
    f = len(run.results) - p
    lines.append(f"{title}: {p} passed, {f} failed in {seconds:.0f} s")
    for r in run.results:  # every Job, API and option check, in run order
        detail = r.detail.splitlines()[0][:160] if r.detail else ""
        mark = "pass" if r.ok else "FAIL"
        lines.append(f"  {mark} {r.name}" + (f": {detail}" if detail else ""))
    lines += [f"  {line}" for line in run.restarts()]  # the kubelet's and Jobs' retries
    for name, why in sorted(set(run.not_run)):
        lines.append(f"  not run here: {name}: {why}")
    lines += [f"  FAILED {r.name}" for r in run.results if not r.ok]
    return passed + p, failed + f


def _site(site: str) -> dict:
    import yaml

    return yaml.safe_load((ROOT / "sites" / site / "site.yaml").read_text())


if __name__ == "__main__":
    sys.exit(main())
