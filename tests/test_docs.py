"""The documentation agrees with the code and with itself: every problem code of
compiler/kkc/codes.py is in docs/errors.md and no page names a code that does not exist;
every relative link of README.md and docs/*.md reaches a file (and heading) that exists.
Nothing here runs kustomize."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from conftest import PROJECT
from kkc.codes import CODES

README = PROJECT / "README.md"
DOCS = PROJECT / "docs"
ERRORS = DOCS / "errors.md"
PAGES = [README, *sorted(DOCS.glob("*.md"))]

# Pages other branches are writing at the same time; linked already, checked once they exist.
# Remove an entry when its file is merged.
CODE = re.compile(r"\bKKC[0-9]{3}\b")
FENCE = re.compile(r"^(```+|~~~+).*?^\1[ \t]*$", re.M | re.S)
CODE_SPAN = re.compile(r"(`+)(?!`).*?(?<!`)\1(?!`)", re.S)
LINK = re.compile(r"\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t]*#*[ \t]*$", re.M)


def _rel(path: Path) -> str:
    return path.relative_to(PROJECT).as_posix()


def _prose(text: str) -> str:
    """The text without fenced code blocks and code spans (where links are not links)."""
    return CODE_SPAN.sub("", FENCE.sub("", text))


def _slug(heading: str) -> str:
    """GitHub's anchor of a heading: markup dropped, lower case, punctuation removed, spaces
    as hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).replace("`", "").lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for heading in HEADING.findall(FENCE.sub("", path.read_text(encoding="utf-8"))):
        slug = _slug(heading)
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}-{n}")
    return out


def test_the_documentation_exists() -> None:
    assert ERRORS.is_file()
    assert (DOCS / "README.md").is_file()


def test_every_code_is_documented_in_docs_errors() -> None:
    rows = re.findall(r"^\| `(KKC[0-9]{3})` \|", ERRORS.read_text(encoding="utf-8"), re.M)
    assert sorted(set(CODES) - set(rows)) == []
    assert sorted(code for code in set(rows) if rows.count(code) > 1) == []


@pytest.mark.parametrize("page", PAGES, ids=_rel)
def test_documentation_names_no_unknown_code(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    assert sorted(set(CODE.findall(text)) - set(CODES)) == []


def _links(page: Path) -> list[tuple[int, str]]:
    text = page.read_text(encoding="utf-8")
    prose = _prose(text)
    out = []
    for match in LINK.finditer(prose):
        target = match.group(1)
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):  # https:, mailto:, ...
            continue
        out.append((prose.count("\n", 0, match.start()) + 1, target))
    return out


@pytest.mark.parametrize("page", PAGES, ids=_rel)
def test_relative_links_point_at_what_exists(page: Path) -> None:
    broken = []
    for line, target in _links(page):
        path_part, _, anchor = target.partition("#")
        dest = (page.parent / path_part).resolve() if path_part else page
        try:
            rel = dest.relative_to(PROJECT).as_posix()
        except ValueError:
            broken.append(f"{_rel(page)}:{line}: {target}: leaves the repository")
            continue
        if not dest.exists():
            broken.append(f"{_rel(page)}:{line}: {target}: no such file")
        elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
            broken.append(f"{_rel(page)}:{line}: {target}: no heading #{anchor} in {rel}")
    assert broken == []


def test_the_link_check_sees_links() -> None:
    # the checker above is only as good as its parser: it must find the README's links
    targets = {target for _, target in _links(README)}
    assert {"docs/README.md", "docs/errors.md", "docs/cli.md#shell-completion"} <= targets
    assert _slug("Ingress and TLS (overlays `ingress` and `tls`)") == (
        "ingress-and-tls-overlays-ingress-and-tls"
    )
    assert _slug("Output: `deploy/<site>/`") == "output-deploysite"


def test_readme_stays_an_operators_page() -> None:
    text = README.read_text(encoding="utf-8")
    assert len(text.encode("utf-8")) <= 12 * 1024
    # the two-command quick start, exactly
    assert "make demo   # installs kkc into .venv/" in text
    assert "make test   # the whole test suite, offline" in text
