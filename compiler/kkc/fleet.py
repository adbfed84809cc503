"""The sites one fleet command works on: chosen (named, or every site), cut to a shard
(``--shard I/N``), and loaded each on its own, so that a site that fails to load does not
stop the others (:class:`Fleet`).

A shard is picked by a hash of the site name: site ``s`` is in shard ``I`` of ``N`` when
the first 8 bytes of sha256(``s``), as a big-endian number, are ``I - 1`` modulo ``N``.
Every site is in exactly one shard of ``N``, whatever the other sites are: adding or
removing a site moves no other site to another shard (sorted round-robin would move
every site after it). The price is balance: on a small fleet, the shards' sizes vary more
than by one.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

from . import progress
from .errors import KkcError, combined, command_line_error
from .loader import FleetIndex, list_sites, load_site
from .model import Site

_SHARD = re.compile(r"^(\d+)/(\d+)$")


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` (1-based) of ``count``."""

    index: int
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def has(self, name: str) -> bool:
        return bucket(name, self.count) == self.index - 1


def bucket(name: str, count: int) -> int:
    """The 0-based shard of ``count`` that site ``name`` is in."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big") % count


def parse_shard(value: str | None) -> Shard | None:
    """``--shard I/N``: None without the option; KKC164 (exit 2) unless I and N are
    whole numbers with 1 <= I <= N."""
    if value is None:
        return None
    m = _SHARD.match(value.strip())
    if not m or not 1 <= int(m.group(1)) <= int(m.group(2)):
        raise command_line_error(
            "KKC164",
            f"--shard {value}: not I/N with whole numbers 1 <= I <= N "
            "(shard I of N, e.g. --shard 1/4)",
        )
    return Shard(int(m.group(1)), int(m.group(2)))


def in_shard(names: list[str], shard: Shard | None) -> list[str]:
    """The names of ``names`` in ``shard`` (all of them without one), in order."""
    return [n for n in names if shard is None or shard.has(n)]


@dataclass
class Fleet:
    """The sites of one command: ``names``, every site chosen (in order, each once),
    ``sites``, those that loaded, and ``failed``, the error of each one that did not."""

    root: Path
    names: list[str]
    sites: list[Site]
    failed: dict[str, KkcError] = field(default_factory=dict)
    shard: Shard | None = None

    def raise_failures(self, more: dict[str, KkcError] | None = None) -> None:
        """When a site failed (to load, or in ``more``: later, by site name), one error
        for them all, in the order of the sites: every site's lines, the highest exit code
        (:func:`kkc.errors.combined`)."""
        failed = {**self.failed, **(more or {})}
        if failed:
            raise combined([failed[n] for n in self.names if n in failed])

    def keep(self) -> set[str]:
        """Every site of the repository, also those outside the shard or that failed: the
        output of no other site is pruned (only that of sites that are gone)."""
        return set(list_sites(self.root)) | set(self.names)


def choose(root: Path, names: list[str], all_sites: bool, shard: Shard | None = None) -> list[str]:
    """The names of the sites of a command: those named (each once, in order), or every
    site with ``all_sites``; of ``shard`` only."""
    return in_shard(list(dict.fromkeys(list_sites(root) if all_sites else names)), shard)


def load(root: Path, names: list[str], all_sites: bool, shard: Shard | None = None) -> Fleet:
    """The named sites (or every site with ``all_sites``), those of ``shard`` only, each
    loaded and validated on its own; the other sites are read once for all of them
    (:class:`kkc.loader.FleetIndex`)."""
    chosen = choose(root, names, all_sites, shard)
    index = FleetIndex(root)
    fleet = Fleet(root, chosen, [], shard=shard)
    shown = progress.current()
    shown.plan(chosen)
    for name in chosen:
        try:
            fleet.sites.append(load_site(root, name, fleet=index))
        except KkcError as exc:
            fleet.failed[name] = exc
            shown.load_failed(name)
    return fleet
