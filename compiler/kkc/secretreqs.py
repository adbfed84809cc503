"""`kkc secrets`: every Secret a site's output reads, its keys and where each comes from;
names and references only, never a value."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import DifferenceFound, InputError, Problem, UsageError
from .generate import remote_key
from .loader import load_site
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


def _remote_reads(site: Site, outputs: Outputs) -> dict[tuple[str, ...], tuple[str, bool]]:
    """(store, remote key, property) -> (kolla password name, set in secrets.refs) for
    every password the site's ExternalSecrets fetch (read from its computed ``outputs``)."""
    refs = site.get("secrets.refs", {}) or {}
    reads: dict[tuple[str, ...], tuple[str, bool]] = {}
    for req in secret_requirements(site, outputs):
        for key in req["keys"]:
            ref = key.get("remoteRef")
            if ref:
                at = (*_store_of(site), ref["key"], ref.get("property", ""))
                reads.setdefault(at, (key["kollaPassword"], key["kollaPassword"] in refs))
    return reads


def shared_remote_keys(sites: list[Site], outputs: Mapping[str, Outputs]) -> list[Problem]:
    """KKC152: two sites whose ExternalSecrets would fetch the same remote key of one store,
    so that a password of one is the other's (one problem per pair of sites, at the later
    site's ``secrets.keyPrefix``). A key both sites name in ``secrets.refs`` is shared on
    purpose (one Ceph cluster, say) and allowed. ``outputs``: each site's, by name
    (:func:`kkc.outputs.compute`, as rendering them uses)."""
    first: dict[tuple[str, ...], tuple[Site, bool]] = {}
    shared: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for site in sites:
        if site.get("secrets.backend") != "external-secrets":
            continue
        for at, (password, explicit) in _remote_reads(site, outputs[site.name]).items():
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


def _expected(site: Site) -> dict[str, set[str]]:
    """ExternalSecret name -> the remote keys it fetches."""
    out: dict[str, set[str]] = {}
    for req in secret_requirements(site):
        keys = {k["remoteRef"]["key"] for k in req["keys"] if "remoteRef" in k}
        if keys:
            out[req["name"]] = keys
    return out


_NOT_A_LISTING = (
    "neither the JSON of `kubectl get externalsecrets -o json` nor a list of remote keys"
)


def _listing(path: Path, display: str) -> list[Any] | list[str]:
    """The store listing: ExternalSecret objects (``kubectl get externalsecrets -o json``,
    a List or one object) or remote keys (a JSON list of strings, or one per line, ``#``
    comments and blank lines ignored)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"--check {display}: cannot read it ({exc.__class__.__name__})") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError:
        if text.lstrip().startswith(("{", "[")):
            raise InputError(Problem(display, 1, 1, "KKC153", _NOT_A_LISTING)) from None
        lines = (line.split("#", 1)[0].strip() for line in text.splitlines())
        return [line for line in lines if line]
    if isinstance(doc, dict):
        doc = doc["items"] if isinstance(doc.get("items"), list) else [doc]
    if isinstance(doc, list) and all(isinstance(k, str) for k in doc):
        return doc
    if isinstance(doc, list) and all(_is_external_secret(o) for o in doc):
        return doc
    raise InputError(Problem(display, 1, 1, "KKC153", _NOT_A_LISTING))


def _is_external_secret(obj: Any) -> bool:
    return (
        isinstance(obj, dict)
        and obj.get("kind") == "ExternalSecret"
        and isinstance((obj.get("metadata") or {}).get("name"), str)
        and isinstance(obj.get("spec"), dict)
    )


def _ready(obj: dict[str, Any]) -> tuple[bool, str]:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return cond.get("status") == "True", cond.get("message") or cond.get("reason") or ""
    return False, "no Ready condition yet"


def check_store(site: Site, path: Path, display: str) -> dict[str, list[str]]:
    """Offline: what the site expects against a listing of the store (``missing``: expected
    and absent or not synced; ``unused``: listed, under the site's prefix or in its
    namespace, and expected by nothing). Names and keys only, never a value."""
    expected = _expected(site)
    listing = _listing(path, display)
    missing: list[str] = []
    unused: list[str] = []
    if all(isinstance(k, str) for k in listing):
        keys = set(listing)
        wanted = {k: name for name, ks in expected.items() for k in ks}
        missing = [f"{k} (ExternalSecret {wanted[k]})" for k in sorted(wanted) if k not in keys]
        prefix = site.get("secrets.keyPrefix") or ""
        unused = sorted(k for k in keys if k.startswith(prefix) and k not in wanted)
        return {"missing": missing, "unused": unused}
    namespace = site.get("namespace")
    found = {
        o["metadata"]["name"]: o
        for o in listing
        if (o.get("metadata") or {}).get("namespace", namespace) == namespace
    }
    for name, keys in sorted(expected.items()):
        obj = found.get(name)
        if obj is None:
            missing.append(f"ExternalSecret {namespace}/{name}: not in the cluster")
            continue
        ready, why = _ready(obj)
        if not ready:
            missing.append(f"ExternalSecret {namespace}/{name}: not synced ({why})")
        reads = {d["remoteRef"]["key"] for d in obj["spec"].get("data") or [] if "remoteRef" in d}
        missing += [
            f"ExternalSecret {namespace}/{name}: does not read {k} yet (output not applied?)"
            for k in sorted(keys - reads)
        ]
    unused = [f"ExternalSecret {namespace}/{n}" for n in sorted(found) if n not in expected]
    return {"missing": missing, "unused": unused}


@dataclass
class SecretsRun:
    """What `kkc secrets` found: the site's Secret requirements or, with --check, what the
    store listing lacks and holds unused; its text and JSON reports and its verdict."""

    site: str
    requirements: list[dict[str, Any]]
    store: dict[str, list[str]] | None = None  # with --check: {"missing": ..., "unused": ...}

    def as_json(self) -> Any:
        return self.store if self.store is not None else self.requirements

    def lines(self) -> list[str]:
        if self.store is not None:
            found = self.store
            out = [f"{what}: {item}" for what in ("missing", "unused") for item in found[what]]
            missing, unused = len(found["missing"]), len(found["unused"])
            return [*out, f"{self.site}: {missing} missing, {unused} unused"]
        out = []
        for r in self.requirements:
            out += [f"{r['namespace']}/{r['name']}: {r['purpose']}", f"  source: {r['source']}"]
            for k in r["keys"]:
                ref = k.get("remoteRef")
                origin = (
                    f" <- {ref['key']}" + (f" [{ref['property']}]" if "property" in ref else "")
                    if ref
                    else ""
                )
                kind = " (rendered from the other keys)" if "template" in k else ""
                out.append(f"  - {k['key']}: {k['description']}{kind}{origin}")
                out += [f"      | {line}" for line in k.get("content", "").splitlines()]
        return out

    def verdict(self) -> None:
        """Exit 1 (DifferenceFound) when the checked store lacks a key."""
        if self.store is not None and self.store["missing"]:
            raise DifferenceFound(f"kkc secrets --check: {len(self.store['missing'])} missing")


def run(root: Path, name: str, check_file: Path | None = None) -> SecretsRun:
    """`kkc secrets`: the Secrets site ``name`` needs or, with ``check_file`` (a listing
    of the store), how the store compares. Nothing is rendered but the site's outputs."""
    site = load_site(root, name, cross_site=False)
    if check_file is not None:
        return SecretsRun(name, [], check_store(site, check_file, str(check_file)))
    return SecretsRun(name, secret_requirements(site))
