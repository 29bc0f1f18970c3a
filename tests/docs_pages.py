"""The pages the docs tests read: README.md and every docs/*.md, and their text outside code."""
import glob
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = "README.md"
DOCS = sorted(os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, "docs", "*.md")))
PAGES = [README] + DOCS


def read(page: str) -> str:
    """The text of ``page``, a path relative to the repository root."""
    with open(os.path.join(ROOT, page), encoding="utf-8") as fh:
        return fh.read()


def without_fences(text: str) -> str:
    """The text outside fenced code blocks."""
    return re.sub(r"```.*?```", "", text, flags=re.S)


def without_code(text: str) -> str:
    """The text outside fenced code blocks and inline code spans."""
    return re.sub(r"`[^`\n]*`", "", without_fences(text))
