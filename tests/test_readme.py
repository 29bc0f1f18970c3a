"""The documentation's pages, README.md and every docs/*.md (their commands: test_docs_commands.py).

The README stays under 250 lines and names every command; each docs page starts with a
title, a paragraph and a table of contents that links to every ## heading and only to
headings that exist; every relative link or image in the README and the docs points to an
existing file (and, with #anchor, to a heading of that file)."""
import os
import re

import pytest

from docs_pages import DOCS, PAGES, README, ROOT, read, without_code, without_fences
from ladder_tf import commands

MAX_README_LINES = 250
# Links whose target is added separately from the text that links to it.
PENDING_FILES: set[str] = set()  # committed later than the page that links them


def test_readme_names_every_command_and_no_private_module_paths():
    for page in PAGES:
        assert "python -m ladder_tf." not in read(page), page  # the commands, not module paths
    text = read(README)
    for name in commands.COMMANDS:
        assert f"`ladder {name}`" in text, name


def test_readme_is_a_short_front_page():
    lines = read(README).splitlines()
    assert len(lines) < MAX_README_LINES, len(lines)
    assert lines[0].startswith("# ")
    assert "make train" in "\n".join(lines[:20]) and "make test" in "\n".join(lines[:20])


def headings(text: str) -> list[tuple[int, str]]:
    """(level, GitHub's anchor) of each heading outside code blocks; the anchor is the text in
    lower case, punctuation dropped, spaces to hyphens, a repeated one numbered -1, -2, ..."""
    seen: dict[str, int] = {}
    out = []
    for hashes, heading in re.findall(r"^(#{1,6}) (.+)$", without_fences(text), re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.replace("`", "").strip().lower()).replace(" ", "-")
        out.append((len(hashes), slug if slug not in seen else f"{slug}-{seen[slug]}"))
        seen[slug] = seen.get(slug, 0) + 1
    return out


def anchors(text: str) -> list[str]:
    return [anchor for _, anchor in headings(text)]


def test_anchors_follow_github():
    text = ("# T\n## 12. Departures, with reasons\n```bash\n## not a heading\n```\n"
            "## `ladder` it's d_t\n## A\n## A\n")
    assert anchors(text) == ["t", "12-departures-with-reasons", "ladder-its-d_t", "a", "a-1"]


@pytest.mark.parametrize("page", DOCS)
def test_docs_page_has_title_intro_and_contents(page):
    text = read(page)
    head, _, _ = text.partition("\n## ")
    blocks = [b.strip() for b in head.split("\n\n") if b.strip()]
    assert blocks[0].startswith("# ") and "\n" not in blocks[0], f"{page}: no title line"
    assert not blocks[1].startswith(("#", "-", "|", "```")), f"{page}: no paragraph after the title"
    toc = re.findall(r"^\s*- \[[^\]]+\]\(#([^)]+)\)$", head, re.M)
    assert toc, f"{page}: no table of contents before the first section"
    targets = anchors(text)
    assert set(toc) <= set(targets), f"{page}: contents link to no heading: {set(toc) - set(targets)}"
    sections = [anchor for level, anchor in headings(text) if level == 2]
    missing = set(sections) - set(toc)
    assert not missing, f"{page}: sections missing from the contents: {missing}"


@pytest.mark.parametrize("page", PAGES)
def test_relative_links_and_images_resolve(page):
    text = without_code(read(page))
    targets = re.findall(r"!?\[[^\]]*\]\(([^)\s]+)\)", text) + re.findall(r'<img src="([^"]+)"', text)
    for target in targets:
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto: ...
            continue
        path, _, anchor = target.partition("#")
        file = os.path.normpath(os.path.join(os.path.dirname(page), path)) if path else page
        if file in PENDING_FILES:
            continue
        assert os.path.exists(os.path.join(ROOT, file)), f"{page}: {target}: no file {file}"
        if anchor and file.endswith(".md"):
            assert anchor in anchors(read(file)), f"{page}: {target}: no heading #{anchor} in {file}"
