"""The published schema describes operations for their callers: no internal note of a base view
(drf-spectacular falls back to the nearest class docstring) reaches the API docs."""

from __future__ import annotations

import inspect

import pytest
from drf_spectacular.generators import SchemaGenerator

from accounts.api import views


@pytest.fixture(scope="module")
def descriptions() -> list[str]:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    return [
        operation.get("description", "")
        for operations in schema["paths"].values()
        for operation in operations.values()
    ]


def test_no_base_view_note_is_published(descriptions):
    private_notes = [
        inspect.getdoc(klass)
        for name, klass in vars(views).items()
        if name.startswith("_") and inspect.isclass(klass) and klass.__module__ == views.__name__
    ]
    for note in filter(None, private_notes):
        assert all(note not in text for text in descriptions), note


def test_the_leaked_notes_are_gone(descriptions):
    assert not any("stale `Authorization` header" in text for text in descriptions)
    assert not any("Security events logged" in text for text in descriptions)
