"""Prose written wrapped in the source, sent unwrapped (OpenAPI descriptions)."""

from __future__ import annotations

import inspect


def prose(text: str) -> str:
    """Each paragraph of `text` on one line, paragraphs apart by a blank line (Markdown reads it
    alike): a description written as a wrapped block, without a quoted string per line."""
    paragraphs = inspect.cleandoc(text).split("\n\n")
    return "\n\n".join(" ".join(paragraph.split()) for paragraph in paragraphs)
