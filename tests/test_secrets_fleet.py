"""Issue 16, no accidental sharing: an ExternalSecrets site reads its passwords under its
own key prefix; an empty secrets section is refused; two sites that would fetch the same
remote key are refused by `kkc lint` and `kkc check` of several sites."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from conftest import snapshot
from helpers import KEYSTONE_SITES, write
from kkc import features


def _site_m(extra: str = "") -> str:
    """site-k's definition as site-m (another namespace and region), plus ``extra``."""
    text = (
        KEYSTONE_SITES["site-k"].replace("site-k", "site-m").replace("openstack-k", "openstack-m")
    )
    return text.replace("region: K1", "region: M1") + extra


def test_default_prefix_is_the_site(small_site_repo: Path, kkc) -> None:
    r = kkc(small_site_repo, "show", "site-k", "--explain", "secrets.keyPrefix")
    assert r.exit_code == 0, r.output
    assert r.stdout == (
        'secrets.keyPrefix: "openstack/site-k/"\n'
        "  not set: the kkc default openstack/<site>/ of secrets.keyPrefix\n"
    )
    r = kkc(small_site_repo, "secrets", "site-k", "-o", "json")
    reqs = json.loads(r.stdout)
    keys = {k["remoteRef"]["key"] for s in reqs for k in s["keys"] if "remoteRef" in k}
    assert keys and all(k.startswith("openstack/site-k/") for k in keys), keys


def test_empty_prefix_is_a_warning(small_site_repo: Path, kkc) -> None:
    text = KEYSTONE_SITES["site-k"] + 'secrets:\n  keyPrefix: ""\n'
    write(small_site_repo, "sites/site-k/site.yaml", text)
    r = kkc(small_site_repo, "render", "site-k")
    assert r.exit_code == 0, r.output
    line = text.count("\n")  # keyPrefix is on the last line
    assert r.stderr == (
        f"warning: sites/site-k/site.yaml:{line}:14: KKC151 secrets.keyPrefix is empty: the "
        "site reads bare keys (database_password, ...) from ClusterSecretStore/openbao, and "
        "every site of that store without a prefix reads the same passwords; set one such as "
        "openstack/site-k/\n"
    )


def test_null_secrets_section_is_refused(small_site_repo: Path, kkc) -> None:
    text = KEYSTONE_SITES["site-k"] + "secrets:\n"
    write(small_site_repo, "sites/site-k/site.yaml", text)
    before = snapshot(small_site_repo)
    r = kkc(small_site_repo, "build", "site-k")
    assert r.exit_code == 2
    line = text.count("\n")
    assert r.stderr == (
        f"sites/site-k/site.yaml:{line}:1: KKC150 an empty secrets: section would delete the "
        "secret settings of the layers below and switch the site to secrets.backend existing, "
        "removing its ExternalSecrets (and, once pruned, the Secrets they own); set "
        "secrets.backend explicitly, or remove the line\n"
    )
    assert snapshot(small_site_repo) == before


def test_null_backend_is_refused(small_site_repo: Path, kkc) -> None:
    text = KEYSTONE_SITES["site-k"] + "secrets:\n  backend: null\n"
    write(small_site_repo, "sites/site-k/site.yaml", text)
    r = kkc(small_site_repo, "show", "site-k")
    assert r.exit_code == 2
    line = text.count("\n")
    assert f"sites/site-k/site.yaml:{line}:3: KKC150 secrets.backend: null would delete" in (
        r.stderr
    )


def test_sites_sharing_remote_keys_are_refused(small_site_repo: Path, kkc) -> None:
    text = _site_m("secrets:\n  keyPrefix: openstack/site-k/\n")
    write(small_site_repo, "sites/site-m/site.yaml", text)
    line = text.count("\n")
    expected = (
        f"sites/site-m/site.yaml:{line}:3: KKC152 sites site-k and site-m both read the remote "
        "key openstack/site-k/database_password (database_password) and 4 more from "
        "ClusterSecretStore/openbao: each would use the other's passwords; give each site its "
        "own secrets.keyPrefix (or secrets.refs)\n"
    )
    for command in ("lint", "check"):
        r = kkc(small_site_repo, command, "--all")
        assert r.exit_code == 2, (command, r.output)
        assert r.stderr == expected
    # one site alone is judged on its own; with its own prefix the two are fine
    assert kkc(small_site_repo, "lint", "site-m").exit_code == 0
    write(small_site_repo, "sites/site-m/site.yaml", _site_m())
    r = kkc(small_site_repo, "lint", "--all")
    assert r.exit_code == 0, r.output


def test_refs_both_sites_name_are_shared_on_purpose(small_site_repo: Path, kkc) -> None:
    ref = "  refs:\n    keystone_admin_password: {key: shared/admin}\n"
    write(small_site_repo, "sites/site-k/site.yaml", KEYSTONE_SITES["site-k"] + "secrets:\n" + ref)
    write(small_site_repo, "sites/site-m/site.yaml", _site_m("secrets:\n" + ref))
    r = kkc(small_site_repo, "lint", "--all")
    assert r.exit_code == 0, r.output
    # one of the two reading the other's key by prefix is not on purpose
    write(
        small_site_repo,
        "sites/site-m/site.yaml",
        _site_m(
            "secrets:\n  refs:\n    database_password: {key: openstack/site-k/database_password}\n"
        ),
    )
    r = kkc(small_site_repo, "lint", "--all")
    assert r.exit_code == 2
    assert "KKC152 sites site-k and site-m both read the remote key " in r.stderr


def _expected(root: Path, kkc) -> list[dict]:
    r = kkc(root, "secrets", "site-k", "-o", "json")
    return [s for s in json.loads(r.stdout) if any("remoteRef" in k for k in s["keys"])]


def test_check_against_a_key_list(small_site_repo: Path, kkc, tmp_path: Path) -> None:
    reads = [k for s in _expected(small_site_repo, kkc) for k in s["keys"] if "remoteRef" in k]
    keys = sorted(k["remoteRef"]["key"] for k in reads)
    listing = tmp_path / "keys.txt"
    listing.write_text("# bao kv list\n" + "\n".join(keys) + "\n")
    r = kkc(small_site_repo, "secrets", "site-k", "--check", str(listing))
    assert (r.exit_code, r.stdout) == (0, "site-k: 0 missing, 0 unused\n")
    listing.write_text("\n".join([*keys[1:], "openstack/site-k/old", "openstack/site-l/x"]))
    r = kkc(small_site_repo, "secrets", "site-k", "--check", str(listing), "-o", "json")
    assert r.exit_code == 1
    found = json.loads(r.stdout)
    assert found["unused"] == ["openstack/site-k/old"]  # another prefix is another site's
    assert len(found["missing"]) == 1 and found["missing"][0].startswith(keys[0] + " (")


def test_check_against_kubectl_json(small_site_repo: Path, kkc, tmp_path: Path) -> None:
    expected = _expected(small_site_repo, kkc)
    items = [
        {
            "kind": "ExternalSecret",
            "metadata": {"name": s["name"], "namespace": "openstack-k"},
            "spec": {
                "data": [{"remoteRef": k["remoteRef"]} for k in s["keys"] if "remoteRef" in k]
            },
            "status": {"conditions": [{"type": "Ready", "status": "True"}]},
        }
        for s in expected
    ]
    listing = tmp_path / "es.json"
    listing.write_text(json.dumps({"kind": "List", "items": items}))
    r = kkc(small_site_repo, "secrets", "site-k", "--check", str(listing))
    assert (r.exit_code, r.stdout) == (0, "site-k: 0 missing, 0 unused\n")
    first = items[0]["metadata"]["name"]
    items[0]["status"]["conditions"][0].update(status="False", message="key not found")
    items.append({**items[0], "metadata": {"name": "old-secret", "namespace": "openstack-k"}})
    listing.write_text(json.dumps({"kind": "List", "items": items}))
    r = kkc(small_site_repo, "secrets", "site-k", "--check", str(listing))
    assert r.exit_code == 1
    assert r.stdout == (
        f"missing: ExternalSecret openstack-k/{first}: not synced (key not found)\n"
        "unused: ExternalSecret openstack-k/old-secret\n"
        "site-k: 1 missing, 1 unused\n"
    )


def test_check_refuses_what_it_cannot_read(small_site_repo: Path, kkc, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"kind": "List", "items": [{"kind": "Secret"}]}')
    r = kkc(small_site_repo, "secrets", "site-k", "--check", str(bad))
    assert r.exit_code == 2
    assert r.stderr == (
        f"{bad}:1:1: KKC153 neither the JSON of `kubectl get externalsecrets -o json` nor a "
        "list of remote keys\n"
    )


def test_kkc152_reads_the_outputs_each_site_is_rendered_from(
    small_site_repo: Path, kkc, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`kkc lint` and `kkc check` of several sites compute each site's outputs once: the
    KKC152 check reads the secrets of the outputs that render the site (the features,
    computed last, are computed once per site and overlay variant)."""
    write(small_site_repo, "sites/site-m/site.yaml", _site_m())
    counts: Counter = Counter()
    computed = features.outputs

    def counting(site, services):
        counts[(site.name, tuple(site.get("overlays") or ()))] += 1
        return computed(site, services)

    monkeypatch.setattr(features, "outputs", counting)
    for command, code in (("lint", 0), ("check", 1)):  # check: nothing is built
        counts.clear()
        r = kkc(small_site_repo, command, "--all")
        assert r.exit_code == code, (command, r.output)
        assert "KKC152" not in r.output
        sites = {name for name, _ in counts}
        assert sites == {"site-k", "site-l", "site-m"}, command
        assert set(counts.values()) == {1}, (command, counts)
