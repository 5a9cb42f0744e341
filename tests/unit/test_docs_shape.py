"""The user-facing documents stay readable: no section appears twice in one document (a merge once duplicated
README's "Cross-silo federations" whole), and every relative link points at a file of the repository."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").glob("*.md"))]


def _headings(text: str) -> list[str]:
    out, fenced = [], False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and re.match(r"#{1,6} ", line):
            out.append(line.strip())
    return out


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_no_heading_twice(doc):
    seen = _headings(doc.read_text())
    assert sorted({h for h in seen if seen.count(h) > 1}) == []


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_relative_links_resolve(doc):
    missing = []
    for target in re.findall(r"\]\(([^)\s]+)\)", doc.read_text()):
        if re.match(r"[a-z]+:|#", target):
            continue
        if not (doc.parent / target.split("#")[0]).exists():
            missing.append(target)
    assert missing == []
