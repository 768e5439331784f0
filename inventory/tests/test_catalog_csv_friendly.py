"""The catalog CSV, friendlier: columns by name, a bad byte on its own line, SKU prefixes and
the count of existing products an import changes, errors on a fresh line after the progress bar."""

from __future__ import annotations

import csv
import io
import re
import sys

import pytest
from django.core.management import CommandError, call_command

from inventory.catalog_csv import COLUMNS, RowError, import_catalog, importer
from inventory.catalog_generator import write_catalog
from inventory.models import Product

pytestmark = pytest.mark.django_db

HEADER = ",".join(COLUMNS)


def write(tmp_path, header, *lines, name="products.csv"):
    path = tmp_path / name
    path.write_text("\n".join([header, *lines]) + "\n", encoding="utf-8")
    return path


def run(*args):
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def errors_of(path):
    errors: list[RowError] = []
    result = import_catalog(path, on_error=errors.append)
    return result, [str(error) for error in errors]


# =============================================================================
# 1. Columns are found by name
# =============================================================================
def test_columns_in_any_order_with_a_loose_header(tmp_path):
    path = write(
        tmp_path,
        " Price ,STOCK,metadata,sku,Category,name,description,is_active,currency,"
        "low_stock_threshold",
        '19.99,12,"{""color"": ""red""}",TEE-1,Clothing/T-Shirts,Cotton Tee,Soft,false,USD,3',
    )
    result, errors = errors_of(path)
    assert (result.ok, result.created, errors) == (True, 1, [])
    tee = Product.objects.select_related("category", "stock").get(sku="TEE-1")
    assert (tee.name, tee.category.full_path, tee.price_cents, tee.is_active) == (
        "Cotton Tee",
        "Clothing/T-Shirts",
        1999,
        False,
    )
    assert (tee.description, tee.metadata) == ("Soft", {"color": "red"})
    assert (tee.stock.on_hand, tee.stock.low_stock_threshold) == (12, 3)


def test_unknown_and_missing_columns_are_named_and_nothing_is_read(tmp_path):
    path = write(tmp_path, "sku,name,colour,category,stock,name", "A-1,Mug,red,Home,1,Mug again")
    result, errors = errors_of(path)
    assert not result.ok
    assert errors == [
        'line 1: unknown column "colour"',
        'line 1: column "name" appears 2 times',
        'line 1: missing column "price"',
    ]
    assert (result.rows, Product.objects.exists()) == (0, False)


def test_a_header_cell_without_a_name_is_reported(tmp_path):
    _, errors = errors_of(write(tmp_path, HEADER + ",", "A-1,Mug,Home,1.00,USD,1,0,true,,,"))
    assert errors == ["line 1: column 11 of the header has no name"]


def test_only_the_required_columns(tmp_path):
    path = write(tmp_path, "sku,name,category,price,stock", "A-1,Mug,Home,1.50,4")
    result, errors = errors_of(path)
    assert (result.ok, errors) == (True, [])
    mug = Product.objects.select_related("stock").get(sku="A-1")
    assert (mug.currency, mug.is_active, mug.description, mug.metadata) == ("USD", True, "", {})
    assert (mug.stock.on_hand, mug.stock.low_stock_threshold) == (4, 0)


def test_a_left_out_column_keeps_an_existing_products_value(tmp_path, make_product):
    make_product(
        sku="A-1",
        name="Mug",
        description="Stoneware",
        metadata={"color": "red"},
        is_active=False,
        on_hand=5,
        low_stock_threshold=2,
    )
    path = write(tmp_path, "stock,sku,price,name,category", "9,A-1,3.00,Big Mug,Home")
    result, errors = errors_of(path)
    assert (result.ok, result.updated, errors) == (True, 1, [])
    mug = Product.objects.select_related("stock").get(sku="A-1")
    assert (mug.name, mug.price_cents, mug.description, mug.metadata, mug.is_active) == (
        "Big Mug",
        300,
        "Stoneware",
        {"color": "red"},
        False,
    )
    assert (mug.stock.on_hand, mug.stock.low_stock_threshold) == (9, 2)
    # The same file again writes nothing.
    again, _ = errors_of(path)
    assert (again.updated, again.stock_movements, again.rows_changed) == (0, 0, 0)


def test_a_row_with_the_wrong_number_of_fields_counts_the_files_columns(tmp_path):
    path = write(tmp_path, "sku,name,category,price,stock", "A-1,Mug,Home,1.50,4,extra")
    _, errors = errors_of(path)
    assert errors == ["line 2: expected 5 fields, found 6"]


def test_errors_name_the_canonical_column_whatever_the_order(tmp_path):
    path = write(tmp_path, "stock,price,sku,name,category", "x,1.999,A-1,Mug,Home")
    _, errors = errors_of(path)
    assert errors == [
        "line 2, column price: A price is a number, 0 or more, with at most two decimal places.",
        "line 2, column stock: Stock is a whole number of units, 0 or more.",
    ]


# =============================================================================
# 2. A byte that is not UTF-8 is reported on its own line, and the other rows are checked too
# =============================================================================
def test_a_bad_byte_is_reported_on_its_line_and_column_and_checking_goes_on(tmp_path):
    lines = [HEADER.encode()]
    lines += [f"OK-{n},Mug {n},Home,1.00,USD,1,0,true,,".encode() for n in range(3000)]
    lines.insert(2500, b"A-1,Caf\xe9,Home,1.00,USD,1,0,true,,")  # line 2501
    lines.insert(2700, b'"B-1","Two\nlines",Home,x,USD,1,0,true,"d\xff",')  # line 2701-2702
    lines.append(b"C-1,Cup,Home,1.00,USD,-1,0,true,,")
    path = tmp_path / "latin1.csv"
    path.write_bytes(b"\n".join(lines) + b"\n")
    result, errors = errors_of(path)
    assert not result.ok
    assert errors == [
        "line 2501, column name: is not UTF-8 (byte 0xE9); save the file as UTF-8",
        "line 2701, column description: is not UTF-8 (byte 0xFF); save the file as UTF-8",
        "line 2701, column price: A price is a number, 0 or more, with at most two decimal places.",
        "line 3005, column stock: Stock is a whole number of units, 0 or more.",
    ]
    assert (result.rows, result.bad_rows) == (3003, 3)
    assert not Product.objects.exists()


def test_a_bad_byte_in_a_reordered_file_names_the_files_column(tmp_path):
    path = tmp_path / "p.csv"
    path.write_bytes(b"name,sku,category,price,stock\nCaf\xe9,A-1,Home,1.00,1\n")
    _, errors = errors_of(path)
    assert errors == ["line 2, column name: is not UTF-8 (byte 0xE9); save the file as UTF-8"]


@pytest.mark.parametrize(
    "content", ["\ufeffsku,name".encode("utf-16-le") + b"\n", b"\xff\xfe not utf-8"]
)
def test_a_header_that_is_not_utf8_is_line_1(tmp_path, content):
    path = tmp_path / "p.csv"
    path.write_bytes(content)
    _, errors = errors_of(path)
    assert errors == ["line 1: the file is not UTF-8"]


def test_a_file_with_a_bom_and_utf8_text_is_fine(tmp_path):
    path = tmp_path / "p.csv"
    path.write_bytes(b"\xef\xbb\xbf" + f"{HEADER}\nA-1,Café,Home,1.00,USD,1,0,true,,\n".encode())
    result, errors = errors_of(path)
    assert (result.ok, errors) == (True, [])
    assert Product.objects.get().name == "Café"


# =============================================================================
# 3. generate_catalog's --prefix, and how many existing products an import changes
# =============================================================================
def test_generate_without_a_prefix_is_unchanged_and_a_prefix_only_changes_skus(tmp_path):
    plain, prefixed = tmp_path / "a.csv", tmp_path / "b.csv"
    run("generate_catalog", "--products", "30", "--seed", "7", "-o", str(plain))
    reference = io.StringIO()
    write_catalog(reference, products=30, seed=7)
    assert plain.read_bytes() == reference.getvalue().encode()
    run(
        "generate_catalog", "--products", "30", "--seed", "7", "--prefix", "B-", "-o", str(prefixed)
    )
    rows = list(csv.reader(plain.open(encoding="utf-8")))
    other = list(csv.reader(prefixed.open(encoding="utf-8")))
    assert other[0] == rows[0]
    assert [row[0] for row in other[1:]] == [f"B-{row[0]}" for row in rows[1:]]
    assert [row[1:] for row in other[1:]] == [row[1:] for row in rows[1:]]


@pytest.mark.parametrize("prefix", ["-B", "a b", "é", "x" * 49])
def test_generate_refuses_a_prefix_that_makes_bad_skus(prefix):
    with pytest.raises(CommandError, match="--prefix"):
        run("generate_catalog", "--products", "1", "--prefix", prefix)


def test_the_import_says_how_many_existing_products_it_changes(tmp_path):
    first, same, prefixed = tmp_path / "a.csv", tmp_path / "b.csv", tmp_path / "c.csv"
    run("generate_catalog", "--products", "20", "--seed", "1", "-o", str(first))
    run("generate_catalog", "--products", "20", "--seed", "2", "-o", str(same))
    run(
        "generate_catalog", "--products", "20", "--seed", "2", "--prefix", "B-", "-o", str(prefixed)
    )
    out, _ = run("import_catalog", str(first), "--no-progress")
    assert "existing product" not in out  # an empty catalog: nothing to say
    # Same SKUs, other content: every product of the first file would change.
    out, _ = run("import_catalog", str(same), "--dry-run", "--no-progress")
    lines = out.splitlines()
    assert lines[0] == "This file changes 20 existing products."
    assert lines[1].startswith("Would import b.csv: 20 rows, 0 new, ")
    out, _ = run("import_catalog", str(prefixed), "--no-progress")
    assert out.splitlines()[0] == "This file changes no existing products."
    assert "20 rows, 20 new, 0 updated, 0 unchanged" in out
    assert Product.objects.count() == 40


def test_a_stock_only_change_counts_as_a_change(tmp_path, make_product):
    make_product(sku="A-1", name="Mug", on_hand=5)
    exported = tmp_path / "export.csv"
    run("export_catalog", "-o", str(exported))
    header, row = exported.read_text(encoding="utf-8").splitlines()
    cells = row.split(",")
    assert cells[COLUMNS.index("stock")] == "5"
    cells[COLUMNS.index("stock")] = "6"
    exported.write_text(f"{header}\n{','.join(cells)}\n", encoding="utf-8")
    out, _ = run("import_catalog", str(exported), "--dry-run", "--no-progress")
    assert out.splitlines()[0] == "This file changes 1 existing product."


# =============================================================================
# 4. An error after the progress bar starts on a line of its own
# =============================================================================
class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_errors_start_on_a_fresh_line_after_the_progress_bar(tmp_path, monkeypatch):
    monkeypatch.setattr(importer, "PROGRESS_EVERY_ROWS", 1)
    rows = [f"OK-{n},Mug,Home,1.00,USD,1,0,true,," for n in range(5)]
    rows[3] = "BAD SKU,Mug,Home,1.00,USD,1,0,true,,"
    path = write(tmp_path, HEADER, *rows)
    terminal = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    with pytest.raises(CommandError, match="1 of 5 rows are bad"):
        call_command("import_catalog", str(path), stdout=io.StringIO(), stderr=terminal)
    output = terminal.getvalue()
    assert "\r[" in output  # the bar was drawn
    error = "line 5, column sku: A SKU is 1 to 64 letters"
    assert re.search(rf"(^|\n){re.escape(error)}", output), output
    # Every printed line is either the bar (redrawn with \r) or a whole error line.
    for line in output.split("\n"):
        assert line == "" or line.startswith(("\r[", "line ")), line
    assert output.endswith("\n")


def test_the_bar_alone_ends_with_its_newline(tmp_path):
    out = io.StringIO()
    path = write(tmp_path, HEADER, "OK-1,Mug,Home,1.00,USD,1,0,true,,")
    assert import_catalog(path, progress=out).ok
    assert out.getvalue().count("\n") == 1
    assert out.getvalue().endswith("100% 1 rows\n")
