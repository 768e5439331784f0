"""The repository explains itself: the docs name every API path and link only to what exists.

- every `/api/v1/...` path of the generated OpenAPI schema is written in docs/API.md, relative to
  `/api/v1/` and in backticks, with any placeholder name (`{id}`, `{pk}`, `{item_id}`,
  `{id or slug}`) standing for the schema's parameter;
- every relative link in README.md and docs/ (ADRs included) points at a file or directory of
  the repository;
- nothing refers to `../shared`, which a clone does not have.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import pytest
from drf_spectacular.generators import SchemaGenerator

ROOT = Path(__file__).resolve().parents[2]
API_MD = ROOT / "docs" / "API.md"
PREFIX = "/api/v1/"
PLACEHOLDER = re.compile(r"\{[^}/]+\}")
# [text](target) and ![alt](target); the target ends at whitespace or the closing parenthesis.
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
EXTERNAL = re.compile(r"^(?:[a-z][a-z0-9+.-]*:|//)", re.IGNORECASE)


def documents() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def schema_paths() -> list[str]:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    return sorted(path for path in schema["paths"] if path.startswith(PREFIX))


def doc_pattern(path: str) -> re.Pattern[str]:
    """How docs/API.md writes a schema path: in backticks, relative to /api/v1/ (or with it),
    any `{name}` for each parameter; a query string may follow (`reports/sales/?date_from…`)."""
    relative = path.removeprefix(PREFIX)
    body = "".join(
        re.escape(part) if index % 2 == 0 else r"\{[^}`]+\}"
        for index, part in enumerate(_split(relative))
    )
    return re.compile(r"`(?:/api/v1/)?" + body + r"(?:`|\?)")


def _split(relative: str) -> list[str]:
    """Literal parts and placeholders, alternating (literal first)."""
    parts: list[str] = []
    position = 0
    for match in PLACEHOLDER.finditer(relative):
        parts += [relative[position : match.start()], match.group()]
        position = match.end()
    return [*parts, relative[position:]]


def test_the_schema_has_api_paths():
    paths = schema_paths()
    assert f"{PREFIX}orders/{{id}}/pay/" in paths
    assert len(paths) > 30


def test_api_md_names_every_api_path_of_the_schema():
    text = API_MD.read_text(encoding="utf-8")
    missing = []
    for path in schema_paths():
        if path == PREFIX:
            found = f"`{PREFIX}`" in text
        else:
            found = doc_pattern(path).search(text) is not None
        if not found:
            missing.append(path)
    assert not missing, f"docs/API.md does not name {missing}"


def test_doc_pattern_accepts_the_docs_placeholder_names():
    pattern = doc_pattern(f"{PREFIX}cart/items/{{item_id}}/")
    assert pattern.search("PATCH `cart/items/{id}/` |")
    assert pattern.search("`/api/v1/cart/items/{item_id}/`")
    assert not pattern.search("`cart/items/`")
    assert doc_pattern(f"{PREFIX}reports/sales/").search("GET `reports/sales/?date_from&date_to`")
    assert not doc_pattern(f"{PREFIX}payments/").search("`orders/{id}/payments/`")


def links(document: Path) -> list[str]:
    text = document.read_text(encoding="utf-8")
    # Code blocks and inline code hold examples, not links.
    text = re.sub(r"```.*?```", "", text, flags=re.DOTALL)
    text = re.sub(r"`[^`\n]*`", "", text)
    return LINK.findall(text)


@pytest.mark.parametrize("document", documents(), ids=lambda path: str(path.relative_to(ROOT)))
def test_every_relative_link_points_at_a_file_in_the_repository(document):
    broken = []
    for target in links(document):
        if EXTERNAL.match(target) or target.startswith("#"):
            continue
        path = unquote(target.split("#", 1)[0].split("?", 1)[0])
        resolved = (document.parent / path).resolve()
        if not resolved.is_relative_to(ROOT) or not resolved.exists():
            broken.append(target)
    assert not broken, f"{document.relative_to(ROOT)} links to {broken}"


def test_the_docs_link_to_each_other():
    readme = ROOT / "README.md"
    assert {"docs/API.md", "docs/ARCHITECTURE.md", "docs/adr/"} <= set(links(readme))
    assert sorted((ROOT / "docs" / "adr").glob("0001-*.md")), "the ADRs are numbered from 0001"


@pytest.mark.parametrize("document", documents(), ids=lambda path: str(path.relative_to(ROOT)))
def test_nothing_refers_to_the_shared_design_folder(document):
    assert "../shared" not in document.read_text(encoding="utf-8")
