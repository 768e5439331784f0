"""One owner per rule: a product field rule refuses the same value with the same message whether
it comes through the services (the API and the console) or a CSV row."""

from __future__ import annotations

import json

import pytest

from inventory.catalog_csv import COLUMNS, validate_row
from inventory.exceptions import CatalogValidationError
from inventory.models import Product, StockLevel
from inventory.services import category_get_or_create_path, product_update

GOOD_CELLS = {
    "sku": "MUG-1",
    "name": "Mug",
    "category": "Home/Kitchen",
    "price": "12.50",
    "currency": "USD",
    "stock": "3",
    "low_stock_threshold": "1",
    "is_active": "true",
    "description": "A mug.",
    "metadata": '{"color": "white"}',
}


def nested(levels: int) -> object:
    value: object = {}
    for _ in range(levels - 1):
        value = {"k": value}
    return value


def csv_errors(**cells: str) -> list[tuple[str | None, str]]:
    values, errors = validate_row([{**GOOD_CELLS, **cells}[column] for column in COLUMNS], "USD")
    assert (values is None) == bool(errors)
    return errors


def test_the_good_row_is_good():
    values, errors = validate_row([GOOD_CELLS[column] for column in COLUMNS], "USD")
    assert errors == []
    assert values == (
        "MUG-1",
        "mug-1",
        "Mug",
        "mug-mug-1",
        "Home/Kitchen",
        1250,
        "USD",
        3,
        1,
        True,
        "A mug.",
        '{"color": "white"}',
    )


# (CSV column, bad cell, bad product_create field, the message both give)
SAME_RULE = [
    (
        "sku",
        "bad sku",
        {"sku": "bad sku"},
        "A SKU is 1 to 64 letters, digits, '-' or '_', starting with a letter or digit.",
    ),
    ("name", " ", {"name": " "}, "A name is required."),
    ("name", "n" * 201, {"name": "n" * 201}, "A name is at most 200 characters."),
    ("name", "a\x00b", {"name": "a\x00b"}, "A name cannot contain a NUL character."),
    (
        "price",
        "-1",
        {"price_cents": -1},
        "A price is a number, 0 or more, with at most two decimal places.",
    ),
    ("currency", "EUR", {"currency": "EUR"}, "The store sells in USD only."),
    ("stock", "-1", {"on_hand": -1}, "Stock is a whole number of units, 0 or more."),
    (
        "low_stock_threshold",
        "-1",
        {"low_stock_threshold": -1},
        "A low-stock threshold is a whole number, 0 or more.",
    ),
    (
        "is_active",
        "maybe",
        {"is_active": "maybe"},
        "Active is true or false (also 1/0, yes/no, y/n or t/f).",
    ),
    (
        "description",
        "a\x00b",
        {"description": "a\x00b"},
        "A description cannot contain a NUL character.",
    ),
    ("metadata", "[1]", {"metadata": [1]}, "Metadata must be a JSON object."),
    (
        "metadata",
        json.dumps(nested(33)),
        {"metadata": nested(33)},
        "Metadata is nested deeper than 32 levels.",
    ),
    (
        "metadata",
        json.dumps({"k": "\x00"}),
        {"metadata": {"k": "\x00"}},
        "Metadata contains a NUL character (\\u0000).",
    ),
    (
        "metadata",
        json.dumps({"k": "x" * 17_000}),
        {"metadata": {"k": "x" * 17_000}},
        "Metadata is 17009 bytes; at most 16384 are allowed.",
    ),
]


@pytest.mark.parametrize(("column", "cell", "field", "message"), SAME_RULE)
def test_a_rule_refuses_with_one_message_in_the_services_and_the_csv(
    column, cell, field, message, make_product
):
    assert csv_errors(**{column: cell}) == [(column, message)]
    with pytest.raises(CatalogValidationError) as refused:
        make_product(**field)
    assert refused.value.detail == message
    assert not Product.objects.exists()
    assert not StockLevel.objects.exists()


def test_a_category_path_rule_is_one_for_the_services_and_the_csv(db):
    message = (
        "A category path is names separated by '/', like Electronics/Audio: none empty, each at "
        "most 100 characters, 1000 in all."
    )
    for path in ("Home//Kitchen", " ", "Home/" + "k" * 101, "/".join(["c" * 100] * 10)):
        assert csv_errors(category=path) == [("category", message)]
        with pytest.raises(CatalogValidationError) as refused:
            category_get_or_create_path(full_path=path)
        assert refused.value.detail == message
    assert csv_errors(category=" Home / Kitchen ") == []
    assert category_get_or_create_path(full_path=" Home / Kitchen ").full_path == "Home/Kitchen"


def test_product_update_applies_the_same_rules(product):
    for changes, message in [
        ({"name": ""}, "A name is required."),
        ({"price_cents": -5}, "A price is a number, 0 or more, with at most two decimal places."),
        ({"is_active": "maybe"}, "Active is true or false (also 1/0, yes/no, y/n or t/f)."),
        ({"low_stock_threshold": -1}, "A low-stock threshold is a whole number, 0 or more."),
    ]:
        with pytest.raises(CatalogValidationError) as refused:
            product_update(product=product, changes=changes)  # type: ignore[arg-type]
        assert refused.value.detail == message
    product.refresh_from_db()
    product.stock.refresh_from_db()
    assert (product.name, product.price_cents, product.is_active) == (
        "Studio Headphones",
        1001,
        True,
    )
    assert product.stock.low_stock_threshold == 0


def test_csv_metadata_of_wide_characters_is_measured_in_bytes():
    """5,000 four-byte characters are 20 KB although the text is only 5,009 characters long."""
    text = json.dumps({"k": "\U0001f600" * 5_000}, ensure_ascii=False)
    assert len(text) < 16_384 // 3
    assert csv_errors(metadata=text) == [
        ("metadata", "Metadata is 20009 bytes; at most 16384 are allowed.")
    ]


def test_a_csv_row_reports_every_bad_cell_in_column_order():
    errors = csv_errors(sku="", price="1.999", stock="x", is_active="nope", metadata="{")
    assert [column for column, _ in errors] == ["sku", "price", "stock", "is_active", "metadata"]
    assert errors[-1] == ("metadata", "Metadata is not valid JSON.")
