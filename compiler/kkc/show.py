"""`kkc show`: a site's effective definition, or where one value came from (the file,
line and layer of each origin). Nothing is rendered."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import SiteInvalid, UsageError, did_you_mean
from .loader import load_site
from .model import Origin, Site
from .yamlio import dump


@dataclass
class Shown:
    """The definition of ``site`` or, with ``explain``, the value at that dotted path and
    its origins (``found``; None for a path a site that failed to load lacks)."""

    site: Site
    explain: str | None
    found: tuple[Any, list[Origin]] | None = None

    def as_json(self) -> Any:
        """The -o json form: the definition, or one value with its origins."""
        if self.explain is None:
            return self.site.data
        if self.found is None:
            return None
        value, origins = self.found
        return {"path": self.explain, "value": value, "origins": [vars(o) for o in origins]}

    def text(self) -> str:
        if self.explain is None:
            return dump(self.site.data)
        if self.found is None:
            return ""
        value, origins = self.found
        lines = [f"{self.explain}: {json.dumps(value, sort_keys=True)}"]
        return "\n".join([*lines, *(f"  {o}" for o in origins)]) + "\n"


def _shown(site: Site, explain: str | None, *, fail: bool) -> Shown:
    """An unknown ``explain`` path fails with a did-you-mean (``fail``), or shows nothing
    (a site that did not load)."""
    if explain is None:
        return Shown(site, None)
    value, origins = site.explain(explain)
    if origins:
        return Shown(site, explain, (value, origins))
    if not fail:
        return Shown(site, explain)
    raise UsageError(
        f"{explain}: no such key in the effective definition of {site.name}"
        + did_you_mean(explain, site.paths())
    )


def run(root: Path, name: str, explain: str | None) -> Shown:
    """`kkc show`: site ``name`` loaded (not rendered) and what to show of it."""
    return _shown(load_site(root, name, cross_site=False), explain, fail=True)


def partial(exc: SiteInvalid, explain: str | None) -> Shown | None:
    """What can be shown of a site that failed to load, before its problems: what could
    be resolved of it (not for a config option, which needs the overrides loaded)."""
    if exc.site is None or (explain or "").startswith("config."):
        return None
    assert isinstance(exc.site, Site)
    return _shown(exc.site, explain, fail=False)
