"""`kkc secrets`: every Secret a site's output reads, its keys and where each comes from;
names and references only, never a value."""

from __future__ import annotations

import re
from typing import Any

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
