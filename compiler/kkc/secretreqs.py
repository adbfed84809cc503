"""`kkc secrets`: every Secret a site's output reads, its keys and where each comes from;
names and references only, never a value."""

from __future__ import annotations

import re
from typing import Any

from .errors import Problem
from .generate import remote_key
from .model import Site
from .outputs import Outputs, compute

_TEMPLATE_REF = re.compile(
    r'\{\{\s*(?:index \. "([^"]+)"|\.([\w-]+))\s*(\|\s*urlquery\s*)?(\|\s*regexFind[^}]*)?\}\}'
)


def _placeholders(template: str) -> str:
    """An ExternalSecret template as a human fills it in: {{ .password }} -> <password>;
    a keyring's bare key (nova-ceph) -> <keyring, its key only>."""

    def hint(m: re.Match[str]) -> str:
        how = ", URL-encoded" if m.group(3) else ", its key only" if m.group(4) else ""
        return f"<{m.group(1) or m.group(2)}{how}>"

    return _TEMPLATE_REF.sub(hint, template)


def secret_requirements(site: Site, outputs: Outputs | None = None) -> list[dict[str, Any]]:
    """Every Secret the site's output reads, its keys, and where each comes from (from the
    site's ``outputs``, computed when not given)."""
    backend = site.get("secrets.backend")
    out = []
    for spec in (outputs or compute(site)).all_secrets():
        if spec.created_by:
            source = f"created in the cluster by {spec.created_by}"
        elif backend == "external-secrets":
            store = site.get("secrets.store")
            source = f"ExternalSecret {spec.name} (store {store['kind']}/{store['name']})"
        else:
            source = "must exist in the namespace before sync (secrets.backend: existing)"
        keys = []
        for k in spec.keys:
            entry: dict[str, Any] = {"key": k.key, "description": k.description}
            if k.source:
                entry["kollaPassword"] = k.source
                if backend == "external-secrets" and not spec.created_by:
                    entry["remoteRef"] = remote_key(site, k.source)
            if k.template:
                entry["template"] = k.template
                entry["content"] = _placeholders(k.template)
            keys.append(entry)
        out.append(
            {
                "name": spec.name,
                "namespace": site.get("namespace"),
                "purpose": spec.purpose,
                "source": source,
                "keys": keys,
            }
        )
    return out


def _store_of(site: Site) -> tuple[str, ...]:
    """The secret store a site reads, as the controller resolves it: a ClusterSecretStore
    by name, a SecretStore by name in the site's namespace."""
    store = site.get("secrets.store") or {}
    scope = () if store.get("kind") == "ClusterSecretStore" else (site.get("namespace"),)
    return (store.get("kind"), store.get("name"), *scope)


def _remote_reads(site: Site) -> dict[tuple[str, ...], tuple[str, bool]]:
    """(store, remote key, property) -> (kolla password name, set in secrets.refs) for
    every password the site's ExternalSecrets fetch."""
    refs = site.get("secrets.refs", {}) or {}
    reads: dict[tuple[str, ...], tuple[str, bool]] = {}
    for req in secret_requirements(site):
        for key in req["keys"]:
            ref = key.get("remoteRef")
            if ref:
                at = (*_store_of(site), ref["key"], ref.get("property", ""))
                reads.setdefault(at, (key["kollaPassword"], key["kollaPassword"] in refs))
    return reads


def shared_remote_keys(sites: list[Site]) -> list[Problem]:
    """KKC152: two sites whose ExternalSecrets would fetch the same remote key of one store,
    so that a password of one is the other's (one problem per pair of sites, at the later
    site's ``secrets.keyPrefix``). A key both sites name in ``secrets.refs`` is shared on
    purpose (one Ceph cluster, say) and allowed."""
    first: dict[tuple[str, ...], tuple[Site, bool]] = {}
    shared: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for site in sites:
        if site.get("secrets.backend") != "external-secrets":
            continue
        for at, (password, explicit) in _remote_reads(site).items():
            owner, owner_explicit = first.setdefault(at, (site, explicit))
            if owner is not site and not (explicit and owner_explicit):
                shared.setdefault((owner.name, site.name), []).append((password, at[-2]))
    problems = []
    by_name = {s.name: s for s in sites}
    for (one, other), keys in shared.items():
        password, key = keys[0]
        more = f" and {len(keys) - 1} more" if len(keys) > 1 else ""
        problems.append(
            Problem(
                *_where_prefix(by_name[other]),
                "KKC152",
                f"sites {one} and {other} both read the remote key {key} ({password}){more} "
                f"from {by_name[other].get('secrets.store.kind')}/"
                f"{by_name[other].get('secrets.store.name')}: each would use the other's "
                "passwords; give each site its own secrets.keyPrefix (or secrets.refs)",
            )
        )
    return problems


def _where_prefix(site: Site) -> tuple[str, int, int]:
    """Where the site decides its remote keys: its ``secrets.keyPrefix``, else its file."""
    origin = site.origins.get(("secrets", "keyPrefix"))
    if origin and origin.line:
        return origin.path, origin.line, origin.col
    return f"sites/{site.name}/site.yaml", 1, 1
