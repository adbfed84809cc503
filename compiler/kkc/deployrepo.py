"""A separate deploy repository: deploy/<site>/ plus byte copies of exactly the base/ and
overlays/ directories the sites use, at the same relative paths, so that it builds on its
own and every relative reference of the output resolves as in the site repository.

The directories a site uses are read from the rendered tree itself: every `resources` and
`components` entry of its kustomization files that leaves deploy/<site>/, then the same for
each directory so reached (base/neutron/compute uses base/ovn/compute, ...). The copies kkc
wrote are listed with their sha256 in ``.kkc-copies`` at the top of the deploy repository; a
copy that no kkc-built site of the deploy repository uses any more is removed, and a file
kkc did not write is never touched."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path, PurePosixPath

from . import writer
from .errors import OutputInvalid, Problem
from .writer import MANIFEST, parse_manifest
from .yamlio import load_stream

COPIES = ".kkc-copies"
ATTRIBUTES = ".gitattributes"
KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
SHARED_TOPS = ("base", "overlays")


def _references(rel: PurePosixPath, data: bytes) -> list[PurePosixPath]:
    """The paths (relative to the repository top) that one kustomization file refers to."""
    docs = load_stream(data.decode("utf-8"))
    doc = docs[0] if docs and isinstance(docs[0], dict) else {}
    out = []
    for key in ("resources", "components"):
        for entry in doc.get(key) or []:
            if not isinstance(entry, str) or "://" in entry or entry.startswith("git@"):
                continue
            parts: list[str] = []
            for part in (*rel.parent.parts, *PurePosixPath(entry).parts):
                if part == "..":
                    if not parts:
                        raise OutputInvalid(
                            Problem(
                                rel.as_posix(),
                                1,
                                1,
                                "KKC331",
                                f"{key} entry {entry} leaves the repository; a deploy "
                                "repository can only hold what is inside it",
                            )
                        )
                    parts.pop()
                elif part != ".":
                    parts.append(part)
            out.append(PurePosixPath(*parts))
    return out


def _is_kustomization(rel: str) -> bool:
    return PurePosixPath(rel).name in KUSTOMIZATION_FILES


def _inside(path: PurePosixPath, top: PurePosixPath) -> bool:
    return path == top or top in path.parents


def used_dirs(
    units: dict[PurePosixPath, Iterable[str]], read: Callable[[PurePosixPath], bytes | None]
) -> set[PurePosixPath]:
    """Directories outside the given units that their kustomization files use, transitively.

    ``units`` maps a directory (relative to the repository top) to the files in it;
    ``read(path)`` returns the bytes of a file, or None. A used directory must lie under
    base/ or overlays/ (KKC332)."""
    seen: set[PurePosixPath] = set()
    todo = [(top, list(files)) for top, files in units.items()]
    while todo:
        top, files = todo.pop()
        for rel in sorted(files):
            path = top / rel
            if not _is_kustomization(rel):
                continue
            data = read(path)
            if data is None:
                continue
            for ref in _references(path, data):
                if _inside(ref, top) or ref in seen:
                    continue
                if ref.parts[0] not in SHARED_TOPS or len(ref.parts) < 2:
                    raise OutputInvalid(
                        Problem(
                            path.as_posix(),
                            1,
                            1,
                            "KKC332",
                            f"refers to {ref}/, which is neither under base/ nor overlays/; "
                            "kkc copies only those into a deploy repository",
                        )
                    )
                seen.add(ref)
                todo.append((ref, [n for n in KUSTOMIZATION_FILES if read(ref / n) is not None]))
    # an overlay is copied whole (its defaults.yaml and every stage's component)
    return {PurePosixPath(*d.parts[:2]) if d.parts[0] == "overlays" else d for d in seen}


def files_under(root: Path, top: PurePosixPath) -> dict[str, bytes]:
    """Every regular file under ``root/top`` as {path relative to the root: bytes}."""
    base = root / top
    if not base.is_dir():
        return {}
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(base.rglob("*"))
        if p.is_file()
    }


def copies_for(root: Path, trees: dict[str, dict[str, bytes]]) -> dict[str, bytes]:
    """The base/ and overlays/ files (as in the site repository at ``root``) that the given
    rendered trees ({site: tree}) use."""

    def read(path: PurePosixPath) -> bytes | None:
        if path.parts[0] == "deploy":
            return trees[path.parts[1]].get(PurePosixPath(*path.parts[2:]).as_posix())
        return read_bytes(root / path)

    units = {PurePosixPath("deploy", site): list(tree) for site, tree in trees.items()}
    out: dict[str, bytes] = {}
    for top in sorted(used_dirs(units, read)):
        out.update(files_under(root, top))
    return dict(sorted(out.items()))


def read_bytes(path: Path) -> bytes | None:
    try:
        return path.read_bytes() if path.is_file() else None
    except OSError:
        return None


def parse_copies(data: bytes | None) -> dict[str, str]:
    """Owned copies (path -> sha256), only plain paths under base/ or overlays/: a damaged
    manifest must never make kkc touch anything else."""
    return {
        p: d for p, d in parse_manifest(data).items() if PurePosixPath(p).parts[0] in SHARED_TOPS
    }


def read_copies(top: Path) -> dict[str, str]:
    """The copies kkc owns in the deploy repository at ``top`` (path -> sha256)."""
    return parse_copies(read_bytes(top / COPIES))


def copies_bytes(owned: dict[str, str]) -> bytes:
    doc = {
        "generator": "kkc",
        "about": "byte copies of the site repository's base/ and overlays/ directories that "
        "the sites in deploy/ use; kkc removes them when no site uses them any more",
        "files": dict(sorted(owned.items())),
    }
    return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()


_BEGIN = "# kkc: begin. Generated: the copies of base/ and overlays/ and their manifest"
_END = "# kkc: end"
_GENERATED = [
    _BEGIN,
    *(f"/{top}/** linguist-generated=true gitlab-generated" for top in SHARED_TOPS),
    f"/{COPIES} linguist-generated=true gitlab-generated",
    _END,
]


def attributes_bytes(existing: bytes | None) -> bytes:
    """The top-level .gitattributes with kkc's block, which marks the copies and .kkc-copies
    generated as deploy/<site>/.gitattributes marks a site's output. Every line outside the
    block is kept as it was; a file without the block gets it appended."""
    lines = (existing or b"").decode("utf-8", "replace").splitlines()
    if _BEGIN in lines and _END in lines[lines.index(_BEGIN) :]:
        start = lines.index(_BEGIN)
        end = lines.index(_END, start)
        lines[start : end + 1] = _GENERATED
    else:
        lines += _GENERATED
    return ("\n".join(lines) + "\n").encode()


def in_use(top: Path) -> set[PurePosixPath]:
    """The base/ and overlays/ directories that the kkc-built sites in ``top``/deploy use."""
    units: dict[PurePosixPath, list[str]] = {}
    deploy = top / "deploy"
    for manifest in sorted(deploy.glob(f"*/{MANIFEST}")) if deploy.is_dir() else []:
        units[PurePosixPath("deploy", manifest.parent.name)] = list(
            parse_manifest(manifest.read_bytes())
        )

    return used_dirs(units, lambda path: read_bytes(top / path))


def write_file(path: Path, data: bytes) -> None:
    """Write a kkc-owned file of the deploy repository atomically, mode 0644."""
    writer.write_file(path, data, 0o644)


def remove_file(top: Path, rel: str) -> None:
    """Remove an owned file and the directories it leaves empty (up to base/ or overlays/)."""
    path = top / rel
    path.unlink(missing_ok=True)
    parent = path.parent
    while parent != top and parent.is_dir() and not any(parent.iterdir()):
        parent.rmdir()
        parent = parent.parent
