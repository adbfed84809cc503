"""The cache of rendered sites: `pipeline.render` of inputs kkc has rendered and validated
before is read back, skipping rendering, kustomize and validation.

An entry is found by a key over what the site's output is a function of:

- the resolved site definition (``Site.digest``: every layer, overlay default, config
  file and patch) and where each value was set (warnings name lines of site.yaml);
- kkc's own code and data (the digest of every file of the package, so a changed kkc
  misses, release or not);
- the kustomize engine and version, and the tree's provenance;
- the CRD schemas: a ``--crd-dir``'s files (the embedded ones are kkc's data).

The Kubernetes version is part of the site definition. The bases and overlay components
the build read (``base/``, ``overlays/``) cannot be known before rendering, so the entry
lists them with their sha256, and a hit requires every one to be unchanged: a changed
base misses exactly for the sites whose build read it. Only successful renders are
stored; the entries live in kkc's cache (:mod:`kkc.cache`, bucket ``site``).
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from . import cache, kustomize
from .errors import Problem
from .model import Site

FORMAT = 1
PACKAGE = Path(__file__).resolve().parent


@functools.lru_cache(maxsize=1)
def code_digest() -> str:
    """sha256 over the relative path and bytes of every file of the kkc package."""
    parts: list[bytes | str] = []
    for path in sorted(PACKAGE.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            parts += [path.relative_to(PACKAGE).as_posix(), path.read_bytes()]
    return cache.digest(*parts)


def _crd_digest(crd_dir: str | None) -> str:
    if not crd_dir:
        return "embedded"
    files = sorted(Path(crd_dir).glob("*.y*ml"))
    return cache.digest(*(part for f in files for part in (f.name, f.read_bytes())))


def key(site: Site, crd_dir: str | None, provenance: Any) -> str | None:
    """The entry's key, or None when the cache is off."""
    if not cache.enabled():
        return None
    origins = sorted((".".join(p), str(o), o.deleted) for p, o in site.origins.items())
    return cache.digest(
        f"kkc-site-{FORMAT}",
        site.name,
        site.digest,
        json.dumps(origins),
        code_digest(),
        kustomize.find_engine().describe(),
        repr(provenance),
        _crd_digest(crd_dir),
    )


def _sha(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def dependencies(files: dict[str, bytes] | None, name: str) -> dict[str, str] | None:
    """Of ``files``, what ``kustomize build deploy/<name>`` read (:func:`kkc.kustomize
    .build_reading`), those outside the tree (``base/...``, ``overlays/...``, relative to
    the repository) with their sha256; None when unknown."""
    if files is None:
        return None
    out = {}
    for rel, data in files.items():
        if rel.startswith(".."):
            path = os.path.normpath(os.path.join("deploy", name, rel))
            out[path] = hashlib.sha256(data).hexdigest()
    return dict(sorted(out.items()))


def get(root: Path, entry_key: str | None) -> tuple[dict[str, bytes], str, dict, list] | None:
    """(tree, manifests, objects, warnings) of a valid entry, else None."""
    if entry_key is None:
        return None
    raw = cache.get("site", entry_key)
    if raw is None:
        return None
    try:
        doc = json.loads(raw)
        if any(_sha(root / path) != sha for path, sha in doc["deps"].items()):
            return None
        tree = {p: base64.b64decode(b) for p, b in doc["tree"].items()}
        warnings = [Problem(**w) for w in doc["warnings"]]
        return tree, doc["manifests"], doc["objects"], warnings
    except (ValueError, KeyError, TypeError):
        return None


def put(
    entry_key: str | None,
    deps: dict[str, str] | None,
    tree: dict[str, bytes],
    manifests: str,
    objects: dict[str, str],
    warnings: list[Problem],
) -> None:
    if entry_key is None or deps is None:
        return
    doc = {
        "deps": deps,
        "tree": {p: base64.b64encode(b).decode() for p, b in sorted(tree.items())},
        "manifests": manifests,
        "objects": objects,
        "warnings": [dataclasses.asdict(w) for w in warnings],
    }
    cache.put("site", entry_key, json.dumps(doc, sort_keys=True).encode())
