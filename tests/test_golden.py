"""The example sites compile to exactly the committed golden trees.

Regenerate after an intended change with `make goldens`, then review `git diff tests/golden`.
"""

from __future__ import annotations

import difflib
import os
import re
import shutil

import pytest

from conftest import EXAMPLE_SITES, PROJECT, Built, snapshot
from kkc.yamlio import load_stream

GOLDEN = PROJECT / "tests" / "golden"
SITES = sorted(p.parent.name for p in (PROJECT / "sites").glob("*/site.yaml"))
# the engine that validated the tree differs between machines; everything else must not
ENGINE_LINE = re.compile(rb"^- Validated with kustomize v[0-9.]+$", re.MULTILINE)
HINT = "run `make goldens` and review `git diff tests/golden` if the change is intended"


def test_golden_sites_are_the_shared_built_sites() -> None:
    """The shared build (conftest.built_sites) builds every example site: the test below
    compares each of them."""
    assert tuple(SITES) == EXAMPLE_SITES


@pytest.mark.parametrize("site", SITES)
def test_site_matches_golden(site: str, built_sites: Built) -> None:
    result = built_sites.builds[site]
    assert result.exit_code == 0, result.output
    built = snapshot(built_sites.root / "deploy" / site)
    rendered = built_sites.renders[site]
    assert rendered.exit_code == 0, rendered.output
    built["../rendered.yaml"] = rendered.stdout.encode()
    target = GOLDEN / site / "deploy"
    if os.environ.get("KKC_UPDATE_GOLDENS"):
        shutil.rmtree(GOLDEN / site, ignore_errors=True)
        for path, data in built.items():
            out = (target / path).resolve()
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(data)
        return
    expected = snapshot(target)
    expected["../rendered.yaml"] = (GOLDEN / site / "rendered.yaml").read_bytes()
    _compare_maps(expected, built)


def _compare_maps(expected: dict[str, bytes], actual: dict[str, bytes]) -> None:
    assert sorted(actual) == sorted(expected), f"file sets differ; {HINT}"
    for path in actual:
        if path.endswith("README.md"):
            for side in (actual, expected):
                side[path] = ENGINE_LINE.sub(b"- Validated with kustomize vX", side[path])
        if actual[path] != expected[path]:
            diff = "".join(
                difflib.unified_diff(
                    expected[path].decode().splitlines(True),
                    actual[path].decode().splitlines(True),
                    f"golden/{path}",
                    f"built/{path}",
                )
            )
            pytest.fail(f"{path} differs from the golden copy; {HINT}\n{diff}")


def test_golden_covers_every_site() -> None:
    assert SITES, "no example sites"
    assert sorted(p.name for p in GOLDEN.iterdir() if p.is_dir()) == SITES, HINT


# Long-running containers without a probe, and why; a new one must be added here on purpose.
NO_LIVENESS = {
    # one periodic-task process with no port or connection of its own to test
    "neutron-periodic-workers",
}
NO_READINESS = {
    # node agents: nothing routes traffic to them, liveness restarts a stuck one
    "nova-compute",
    "nova-libvirt",
    "openvswitch-vswitchd",
    "neutron-periodic-workers",
    "neutron-ovn-maintenance-worker",
}


@pytest.mark.parametrize("site", SITES)
def test_every_long_running_container_is_probed(site: str) -> None:
    """Workloads in the golden output (kept equal to the build by the test above) have
    liveness and readiness probes, except the containers listed above with a reason."""
    missing = []
    for obj in load_stream((GOLDEN / site / "rendered.yaml").read_text()):
        if obj["kind"] not in ("Deployment", "StatefulSet", "DaemonSet"):
            continue
        for c in obj["spec"]["template"]["spec"]["containers"]:
            for probe, exempt in (("livenessProbe", NO_LIVENESS), ("readinessProbe", NO_READINESS)):
                if probe not in c and c["name"] not in exempt:
                    missing.append(f"{obj['kind']}/{obj['metadata']['name']} {c['name']} {probe}")
    assert missing == []
