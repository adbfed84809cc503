"""For callers outside the package: the names they import from ``kkc.site``. Inside kkc,
import :mod:`kkc.model` (the site model) and :mod:`kkc.loader` (loading a site) instead;
no module of kkc imports this one (tests/test_architecture.py)."""

from __future__ import annotations

from .loader import find_root, list_sites, load_site
from .model import SECRETISH_KEY, Origin, Site

__all__ = ["SECRETISH_KEY", "Origin", "Site", "find_root", "list_sites", "load_site"]
