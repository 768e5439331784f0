from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from inventory.catalog_csv import COLUMNS, RowError, import_catalog
from inventory.catalog_generator import write_catalog
from inventory.models import Category, Product, StockLevel, StockMovement
from inventory.services import StockLine, stock_reserve

pytestmark = pytest.mark.django_db

HEADER = ",".join(COLUMNS)
SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample" / "products.csv"


def write(tmp_path, *lines, name="products.csv", bom=False):
    path = tmp_path / name
    text = "\n".join([HEADER, *lines]) + "\n"
    path.write_bytes(("\ufeff" if bom else "").encode() + text.encode())
    return path


def run(*args):
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


GOOD = [
    'TEE-1,Cotton Tee,Clothing/Men/T-Shirts,19.99,USD,12,3,true,Soft tee,"{""color"": ""red"", '
    '""size"": ""M""}"',
    "MUG-1,Stoneware Mug,Home/Kitchen,8.5,,4,,false,,",
]


def test_import_creates_products_categories_and_import_movements(tmp_path):
    out, _ = run("import_catalog", str(write(tmp_path, *GOOD, bom=True)), "--no-progress")
    assert "2 rows, 2 new, 0 updated, 0 unchanged, 2 stock movements, 5 new categories" in out
    tee = Product.objects.select_related("category", "stock").get(sku="TEE-1")
    assert (tee.name, tee.category.full_path, tee.price_cents, tee.currency, tee.is_active) == (
        "Cotton Tee",
        "Clothing/Men/T-Shirts",
        1999,
        "USD",
        True,
    )
    assert (tee.description, tee.metadata, tee.slug) == (
        "Soft tee",
        {"color": "red", "size": "M"},
        "cotton-tee-tee-1",
    )
    assert (tee.stock.on_hand, tee.stock.reserved, tee.stock.low_stock_threshold) == (12, 0, 3)
    mug = Product.objects.select_related("stock").get(sku="MUG-1")
    assert (mug.price_cents, mug.is_active, mug.metadata, mug.stock.on_hand) == (850, False, {}, 4)
    movement = StockMovement.objects.get(product=tee)
    assert (
        movement.reason,
        movement.delta_on_hand,
        movement.on_hand_after,
        movement.reference,
    ) == (
        "import",
        12,
        12,
        "import:products.csv",
    )
    assert sorted(Category.objects.values_list("full_path", "depth")) == [
        ("Clothing", 0),
        ("Clothing/Men", 1),
        ("Clothing/Men/T-Shirts", 2),
        ("Home", 0),
        ("Home/Kitchen", 1),
    ]
    # The search vector is current for imported rows too.
    assert Product.objects.filter(search_vector="stoneware").count() == 1


def test_reimport_changes_nothing(tmp_path):
    path = write(tmp_path, *GOOD)
    run("import_catalog", str(path))
    before = list(Product.objects.order_by("id").values_list("id", "updated_at"))
    movements = StockMovement.objects.count()
    out, _ = run("import_catalog", str(path))
    assert "0 new, 0 updated, 2 unchanged, 0 stock movements, 0 new categories" in out
    assert list(Product.objects.order_by("id").values_list("id", "updated_at")) == before
    assert StockMovement.objects.count() == movements


def test_import_updates_by_sku_case_insensitively(tmp_path, make_product, category):
    product = make_product(sku="MUG-1", name="Old Mug", on_hand=10)
    stock_reserve(lines=[StockLine(product.pk, 3)], actor=None, reference="o:1")
    out, _ = run("import_catalog", str(write(tmp_path, "mug-1,New Mug,Home,9.00,USD,7,1,true,,")))
    assert "0 new, 1 updated" in out
    product.refresh_from_db()
    level = StockLevel.objects.get(product=product)
    assert (product.sku, product.name, product.price_cents, product.category.full_path) == (
        "mug-1",
        "New Mug",
        900,
        "Home",
    )
    assert (level.on_hand, level.reserved, level.low_stock_threshold) == (7, 3, 1)
    movement = StockMovement.objects.filter(reason="import").get()
    assert (movement.delta_on_hand, movement.on_hand_after, movement.reserved_after) == (-3, 7, 3)


def test_every_bad_row_reported_and_nothing_written(tmp_path):
    path = write(
        tmp_path,
        GOOD[0],
        "bad sku,Name,Home,1.00,USD,1,0,true,,",
        "OK-2,,Home//Kitchen,1.999,EUR,-1,x,maybe,,[1]",
        "OK-3,Name,Home,1.00,USD,1,0,true,,{not json",
        "OK-4,Too few,fields",
        "tee-1,Duplicate,Home,1.00,USD,1,0,true,,",
    )
    with pytest.raises(CommandError, match="5 of 6 rows are bad"):
        run("import_catalog", str(path))
    assert not Product.objects.exists()
    assert not Category.objects.exists()
    assert not StockMovement.objects.exists()


def test_errors_name_line_column_and_reason(tmp_path):
    path = write(
        tmp_path,
        GOOD[0],
        "bad sku,Name,Home,1.00,USD,1,0,true,,",
        "OK-2,,Home//Kitchen,1.999,EUR,-1,x,maybe,,[1]",
        '"OK-3","Multi\nline name",Home,1.00,USD,1,0,true,,{not json',
        "OK-4,Too few,fields",
        "tee-1,Duplicate,Home,1.00,USD,1,0,true,,",
    )
    errors: list[RowError] = []
    result = import_catalog(path, on_error=errors.append)
    assert not result.ok
    assert [str(error) for error in errors] == [
        "line 3, column sku: A SKU is 1 to 64 letters, digits, '-' or '_', starting with a "
        "letter or digit.",
        "line 4, column name: A name is required.",
        "line 4, column category: A category path is names separated by '/', like "
        "Electronics/Audio: none empty, each at most 100 characters, 1000 in all.",
        "line 4, column price: A price is a number, 0 or more, with at most two decimal places.",
        "line 4, column currency: The store sells in USD only.",
        "line 4, column stock: Stock is a whole number of units, 0 or more.",
        "line 4, column low_stock_threshold: A low-stock threshold is a whole number, 0 or more.",
        "line 4, column is_active: Active is true or false (also 1/0, yes/no, y/n or t/f).",
        "line 4, column metadata: Metadata must be a JSON object.",
        "line 5, column metadata: Metadata is not valid JSON.",
        "line 7: expected 10 fields, found 3",
        # Whole-file checks run after the rows, over every row that is valid on its own.
        "line 8, column sku: the same SKU is already on line 2",
    ]
    assert result.bad_rows == 5
    assert not Product.objects.exists()


def test_stock_below_reserved_is_a_bad_row(tmp_path, make_product):
    product = make_product(sku="MUG-1", on_hand=10)
    stock_reserve(lines=[StockLine(product.pk, 4)], actor=None, reference="o:1")
    errors: list[RowError] = []
    result = import_catalog(
        write(tmp_path, "MUG-1,Mug,Home,1.00,USD,3,0,true,,", GOOD[0]), on_error=errors.append
    )
    assert not result.ok
    assert [str(error) for error in errors] == [
        "line 2, column stock: 4 units are reserved by orders; stock cannot be lower"
    ]
    assert not Product.objects.filter(sku="TEE-1").exists()
    assert StockLevel.objects.get(product=product).on_hand == 10


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "line 1: the file is empty"),
        (b"sku,name\nA,B\n", 'line 1: missing column "category"'),
        (HEADER.encode() + b"\nA-1,Caf\xe9,Home,1,USD,1,0,true,,\n", "not UTF-8"),
    ],
)
def test_unreadable_files(tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    errors: list[RowError] = []
    assert not import_catalog(path, on_error=errors.append).ok
    assert message in str(errors[0])
    assert not Product.objects.exists()


def test_dry_run_writes_nothing(tmp_path):
    out, _ = run("import_catalog", str(write(tmp_path, *GOOD)), "--dry-run")
    assert out.startswith("Would import products.csv: 2 rows, 2 new")
    assert not Product.objects.exists()
    assert not Category.objects.exists()


def test_if_empty_skips_a_filled_catalog(tmp_path, product):
    out, _ = run("import_catalog", str(write(tmp_path, *GOOD)), "--if-empty")
    assert "already has products" in out
    assert Product.objects.count() == 1


def test_missing_file():
    with pytest.raises(CommandError, match="No such file"):
        run("import_catalog", "/nonexistent.csv")


def test_import_low_stock_crossing_alerts_once(
    tmp_path, make_product, staff, django_capture_on_commit_callbacks
):
    from django.core import mail

    make_product(sku="MUG-1", on_hand=10, low_stock_threshold=2)
    with django_capture_on_commit_callbacks(execute=True):
        import_catalog(write(tmp_path, "MUG-1,Mug,Home,1.00,USD,1,2,true,,"))
    assert [message.subject for message in mail.outbox] == ["Low stock: MUG-1 Mug (1 available)"]


def test_bulk_import_sends_one_low_stock_email(
    tmp_path, make_product, staff, django_capture_on_commit_callbacks
):
    from django.core import mail

    for number in range(3):
        make_product(sku=f"BULK-{number}", on_hand=10, low_stock_threshold=2)
    rows = [f"BULK-{number},Bulk {number},Home,1.00,USD,1,2,true,," for number in range(3)]
    with django_capture_on_commit_callbacks(execute=True):
        import_catalog(write(tmp_path, *rows))
    assert [message.subject for message in mail.outbox] == ["Low stock: 3 products"]


def test_export_round_trips(tmp_path, make_product):
    run("import_catalog", str(SAMPLE))
    products = Product.objects.count()
    assert products == 200
    exported = tmp_path / "export.csv"
    run("export_catalog", "-o", str(exported))
    rows = list(csv.reader(exported.open(encoding="utf-8")))
    assert rows[0] == list(COLUMNS)
    assert len(rows) == 201
    snapshot = list(
        Product.objects.order_by("id").values_list(
            "sku",
            "name",
            "category__full_path",
            "price_cents",
            "metadata",
            "is_active",
            "stock__on_hand",
            "stock__low_stock_threshold",
            "updated_at",
        )
    )
    out, _ = run("import_catalog", str(exported))
    assert "0 new, 0 updated, 200 unchanged, 0 stock movements" in out
    assert (
        list(
            Product.objects.order_by("id").values_list(
                "sku",
                "name",
                "category__full_path",
                "price_cents",
                "metadata",
                "is_active",
                "stock__on_hand",
                "stock__low_stock_threshold",
                "updated_at",
            )
        )
        == snapshot
    )


def test_export_to_stdout(capfdbinary, product):
    call_command("export_catalog")
    out = capfdbinary.readouterr().out.decode()
    assert out.splitlines()[0] == HEADER
    assert out.splitlines()[1] == "HP-100,Studio Headphones,Audio,10.01,USD,10,0,true,,"


def test_sample_catalog_has_three_levels_and_metadata():
    rows = list(csv.DictReader(SAMPLE.open(encoding="utf-8")))
    assert len(rows) == 200
    assert {row["category"].count("/") for row in rows} == {2}
    assert all('"color"' in row["metadata"] for row in rows)
    assert any('"size"' in row["metadata"] for row in rows)


def test_generate_catalog_is_deterministic(tmp_path):
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    run("generate_catalog", "--products", "50", "--seed", "7", "-o", str(first))
    run("generate_catalog", "--products", "50", "--seed", "7", "-o", str(second))
    assert first.read_bytes() == second.read_bytes()
    other = io.StringIO()
    write_catalog(other, products=50, seed=8)
    assert other.getvalue().encode() != first.read_bytes()
    assert import_catalog(first).created == 50


def test_generate_catalog_to_stdout(capsys):
    call_command("generate_catalog", "--products", "2", "--seed", "1")
    assert capsys.readouterr().out.splitlines()[0] == HEADER


def test_audit_stock_clean(product):
    out, _ = run("audit_stock")
    assert "agree" in out


def test_audit_stock_reports_drift(product, make_product, allow_stock_drift):
    other = make_product(sku="ORPHAN-1")
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE inventory_stocklevel SET on_hand = on_hand + 5 WHERE product_id = %s",
            [product.pk],
        )
        cursor.execute("DELETE FROM inventory_stocklevel WHERE product_id = %s", [other.pk])
    out = io.StringIO()
    with pytest.raises(CommandError, match="2 product") as caught:
        call_command("audit_stock", stdout=out)
    assert caught.value.returncode == 1
    assert out.getvalue().splitlines() == [
        f"HP-100 (product {product.pk}): level 15 on hand / 0 reserved, ledger sums to 10 / 0, "
        "last movement left 10 / 0",
        f"ORPHAN-1 (product {other.pk}): no stock level",
    ]


def product_indexes():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'inventory_product' "
            "ORDER BY indexname"
        )
        return cursor.fetchall()


def test_bulk_import_rebuilds_the_indexes(monkeypatch, tmp_path, make_product):
    from inventory.catalog_csv import writing

    make_product(sku="KEEP-1", name="Existing Lamp")
    before = product_indexes()
    monkeypatch.setattr(writing, "BULK_MIN_ROWS", 1)
    result = import_catalog(SAMPLE)
    assert (result.created, result.ok) == (200, True)
    assert product_indexes() == before
    assert Product.objects.filter(search_vector="headphones").exists()
    # The rebuilt unique index still refuses a case-insensitive duplicate.
    bad = write(
        tmp_path, "keep-1,Dup,Home,1.00,USD,1,0,true,,", "KEEP-1,Dup,Home,1.00,USD,1,0,true,,"
    )
    assert not import_catalog(bad).ok


FORMULAS = ['=HYPERLINK("http://evil")', "+1 cable", "-5% off", "@SUM(A1)", "'quoted"]


def test_export_escapes_formulas_and_the_import_restores_them(tmp_path):
    from inventory.services import category_create, product_create

    category = category_create(name="@Home")
    for number, text in enumerate(FORMULAS):
        product_create(
            sku=f"F-{number}", name=text, category=category, price_cents=100,
            description=f"\t{text}" if number % 2 else text, on_hand=1,
        )  # fmt: skip
    exported = tmp_path / "export.csv"
    run("export_catalog", "-o", str(exported))
    rows = list(csv.reader(exported.open(encoding="utf-8")))[1:]
    # Every cell a spreadsheet would run gets exactly one leading quote; nothing else changes.
    for (_, name, path, *_, description, _), text in zip(rows, FORMULAS, strict=True):
        assert name == "'" + text
        assert path == "'@Home"
        assert description.startswith("'")
        assert description[1:] in (text, f"\t{text}")
    snapshot = list(Product.objects.order_by("sku").values_list("name", "description", "category"))

    out, _ = run("import_catalog", str(exported))
    assert f"0 new, 0 updated, {len(FORMULAS)} unchanged" in out
    after = list(Product.objects.order_by("sku").values_list("name", "description", "category"))
    assert after == snapshot
    assert Category.objects.filter(full_path="@Home").count() == 1


def test_import_removes_exactly_one_leading_quote(tmp_path):
    import_catalog(write(tmp_path, "Q-1,''Twice,Home,1.00,USD,0,0,true,'=1+1,"))
    product = Product.objects.get(sku="Q-1")
    assert (product.name, product.description) == ("'Twice", "=1+1")
