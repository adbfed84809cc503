"""Commits of kkc's output: one per changed site (and one for a deploy repository's base/
and overlays/ copies), their messages, and the trailers naming the sources they were built
from."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import __version__, deployrepo, gitrepo, writer


def object_changes(old: dict[str, str], new: dict[str, str]) -> writer.Changes:
    return writer.Changes(
        added=sorted(set(new) - set(old)),
        changed=sorted(k for k in set(new) & set(old) if new[k] != old[k]),
        removed=sorted(set(old) - set(new)),
    )


def _file_lines(files: writer.Changes, listed: bool) -> list[str]:
    lines = [
        f"Files: {len(files.added)} added, {len(files.changed)} changed, "
        f"{len(files.removed)} removed"
    ]
    for label, items in (
        (("added", files.added), ("changed", files.changed), ("removed", files.removed))
        if listed
        else ()
    ):
        lines += [f"  {label}: {item}" for item in items[:50]]
        if len(items) > 50:
            lines.append(f"  {label}: ... and {len(items) - 50} more")
    return lines


@dataclass(frozen=True)
class Source:
    """The sources a build read, for the commit trailers: the commit checked out and, when
    the sources on disk are not exactly that commit's (modified, staged or untracked files,
    or no commit at all), the digest of what was read."""

    commit: str | None = None
    digest: str | None = None  # None: the sources are exactly ``commit``'s
    url: str | None = None  # the site repository's origin (deploy repository mode)

    def trailers(self) -> list[str]:
        commit = self.commit or "none"
        return [
            "",
            f"Source-Commit: {commit}-dirty" if self.digest else f"Source-Commit: {commit}",
            *([f"Source-Digest: sha256:{self.digest}"] if self.digest else []),
            *([f"Source-Repository: {self.url}"] if self.url else []),
            f"Kkc-Version: {__version__}",
        ]


# a deploy repository's README names one source commit for all the sites it holds
DEPLOY_REPO_SOURCES = ["sites", *deployrepo.SHARED_TOPS]


def site_sources(name: str) -> list[str]:
    """The paths (relative to the site repository) that the output of site ``name`` is built
    from: its directory, the fleet defaults, the bases and the overlays."""
    return [f"sites/{name}", "sites/defaults.yaml", *deployrepo.SHARED_TOPS]


def source_of(root: Path, prefixes: list[str]) -> Source:
    url, sha, digest = gitrepo.source_info(root, prefixes)
    return Source(sha, digest, url)


def commit_message(
    name: str,
    digest: str | None,
    files: writer.Changes,
    objects: writer.Changes,
    source: Source,
) -> str:
    """``digest`` is the site's; None when the site is gone and its output removed."""
    lines = [f"kkc: {'build' if digest else 'remove'} {name}", ""]
    lines.append(
        f"Objects: {len(objects.added)} added, {len(objects.changed)} changed, "
        f"{len(objects.removed)} removed"
    )
    for label, items in (
        ("added", objects.added),
        ("changed", objects.changed),
        ("removed", objects.removed),
    ):
        for item in items[:50]:
            lines.append(f"  {label}: {item}")
        if len(items) > 50:
            lines.append(f"  {label}: ... and {len(items) - 50} more")
    lines += _file_lines(files, listed=False)
    lines += source.trailers()
    if digest:
        lines.append(f"Site-Digest: sha256:{digest}")
    return "\n".join(lines) + "\n"


def commit_site(
    repo: Any,
    name: str,
    digest: str | None,
    full: dict[str, bytes],
    source: Source,
) -> str | None:
    """Commit the kkc-owned paths of deploy/<site>/ that differ from HEAD; None if none do.

    The message describes the change against HEAD, so output that an earlier build without
    --commit left behind is committed (and described) too."""
    site_dir = Path(repo.working_tree_dir) / "deploy" / name
    head_manifest = gitrepo.head_bytes(repo, site_dir / writer.MANIFEST)
    touched = [p for p in full if gitrepo.differs_from_head(repo, site_dir / p)]
    gone = [
        p
        for p in sorted(set(writer.parse_manifest(head_manifest)) | {writer.MANIFEST})
        if p not in full and gitrepo.differs_from_head(repo, site_dir / p)
    ]
    if not touched and not gone:
        return None
    new = [p for p in touched if gitrepo.head_bytes(repo, site_dir / p) is None]
    files = writer.Changes(added=new, changed=[p for p in touched if p not in new], removed=gone)
    objects = object_changes(
        writer.parse_objects(head_manifest), writer.parse_objects(full.get(writer.MANIFEST))
    )
    return gitrepo.commit_paths(
        repo,
        [site_dir / p for p in touched],
        [site_dir / p for p in gone],
        commit_message(name, digest, files, objects, source),
    )


def commit_copies(repo: Any, top: Path, owned: dict[str, str], source: Source) -> str | None:
    """Commit the copies (with their manifest and the .gitattributes block) that differ from
    HEAD, first: the site commits that follow then refer to bases their commit already has."""
    head = deployrepo.parse_copies(gitrepo.head_bytes(repo, top / deployrepo.COPIES))
    meta = {deployrepo.COPIES, deployrepo.ATTRIBUTES}  # committed, not counted
    paths = sorted(set(owned) | set(head) | meta)
    touched = [p for p in paths if (top / p).is_file() and gitrepo.differs_from_head(repo, top / p)]
    gone = [p for p in paths if not (top / p).exists() and gitrepo.differs_from_head(repo, top / p)]
    if not touched and not gone:
        return None
    new = [p for p in touched if gitrepo.head_bytes(repo, top / p) is None]
    files = writer.Changes(
        added=[p for p in new if p not in meta],
        changed=[p for p in touched if p not in new and p not in meta],
        removed=gone,
    )
    message = (
        "\n".join(
            [
                "kkc: update base/ and overlays/ copies",
                "",
                *_file_lines(files, listed=True),
                *source.trailers(),
            ]
        )
        + "\n"
    )
    return gitrepo.commit_paths(repo, [top / p for p in touched], [top / p for p in gone], message)
