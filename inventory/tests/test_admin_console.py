"""The staff console for products: money, the list, initial stock, delete vs deactivate, catalog
CSV import (preview, confirm, background jobs) and export, and the bulk actions.
Long on purpose: the product console is one page with these parts, tested as staff use it."""

from __future__ import annotations

import io
import re
from decimal import Decimal

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from model_bakery import baker

from common.models import OutboxMessage
from inventory.bulk import LARGE_FILE_ROWS, price_after_percent
from inventory.catalog_csv import COLUMNS, import_catalog
from inventory.models import CatalogImportJob, Category, Product, StockLevel, StockMovement
from inventory.services import category_create

pytestmark = pytest.mark.django_db

PRODUCTS = "/admin/inventory/product/"
IMPORT = f"{PRODUCTS}import-csv/"
EXPORT = f"{PRODUCTS}export-csv/"
HEADER = ",".join(COLUMNS)


@pytest.fixture
def console(staff):
    client = Client()
    client.force_login(staff)
    return client


def csv_upload(*lines: str, name: str = "products.csv") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, ("\n".join([HEADER, *lines]) + "\n").encode(), "text/csv")


def text(response):
    return response.content.decode()


def product_form(category: Category, **fields: str) -> dict[str, str]:
    data = {
        "sku": "LAMP-1",
        "name": "Desk Lamp",
        "description": "",
        "category": str(category.pk),
        "price_cents": "19.99",
        "metadata": "{}",
        "is_active": "on",
        "low_stock_threshold": "0",
        "images-TOTAL_FORMS": "0",
        "images-INITIAL_FORMS": "0",
    }
    return data | fields


# =============================================================================
# Money
# =============================================================================
def test_price_is_typed_as_a_decimal_and_stored_in_cents(console, category):
    response = console.post(f"{PRODUCTS}add/", product_form(category, currency="EUR"))
    assert response.status_code == 302, text(response)[:2000]
    product = Product.objects.get(sku="LAMP-1")
    assert (product.price_cents, product.currency) == (1999, "USD")  # currency is read-only

    page = text(console.get(f"{PRODUCTS}{product.pk}/change/"))
    assert 'name="price_cents" value="19.99"' in page
    assert 'name="currency"' not in page
    assert "USD" in page


def test_price_is_shown_as_money_in_the_list_and_on_the_page(console, make_product):
    product = make_product(sku="BIG-1", price_cents=197995)
    assert "$1,979.95" in text(console.get(PRODUCTS))
    assert "1979.95" in text(console.get(f"{PRODUCTS}{product.pk}/change/"))


def test_a_price_with_three_decimals_is_refused(console, category):
    response = console.post(f"{PRODUCTS}add/", product_form(category, price_cents="1.999"))
    assert response.status_code == 200
    assert not Product.objects.exists()


# =============================================================================
# The list
# =============================================================================
def test_the_list_has_its_columns_and_a_thumbnail(console, make_product):
    pictured = make_product(sku="PIC-1", on_hand=3)
    make_product(sku="BARE-1")
    Product.objects.filter(pk=pictured.pk).update(primary_image="products/1/abc-320.webp")
    page = text(console.get(PRODUCTS))
    headers = re.findall(r'<th scope="col" class="[^"]*column-(\w+)', page)
    assert headers == ["thumbnail", "sku", "name_and_category", "price", "available", "active"]
    assert 'src="/media/products/1/abc-320.webp"' in page
    assert "product-thumb-none" in page  # BARE-1 has no image
    assert "Import CSV" in page
    assert "Export CSV" in page


def _list_queries(client) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(PRODUCTS).status_code == 200
    return len(queries)


def test_the_list_makes_no_query_per_row(
    console, make_product, category, django_assert_max_num_queries
):
    make_product(on_hand=2)
    one = _list_queries(console)
    other = category_create(name="Lighting")
    for number in range(19):
        make_product(on_hand=number, category=other if number % 2 else category)
    with django_assert_max_num_queries(one):
        assert console.get(PRODUCTS).status_code == 200
    assert _list_queries(console) == one


def test_the_low_stock_filter_stays(console, make_product):
    make_product(sku="FULL-1", on_hand=10, low_stock_threshold=2)
    make_product(sku="LOW-1", on_hand=1, low_stock_threshold=2)
    page = text(console.get(f"{PRODUCTS}?stock=low"))
    assert "LOW-1" in page
    assert "FULL-1" not in page


# =============================================================================
# Initial stock
# =============================================================================
def test_initial_stock_on_add_writes_one_receipt(console, staff, category):
    response = console.post(f"{PRODUCTS}add/", product_form(category, initial_stock="7"))
    assert response.status_code == 302, text(response)[:2000]
    product = Product.objects.get(sku="LAMP-1")
    movement = StockMovement.objects.get(product=product)
    assert (movement.reason, movement.delta_on_hand, movement.actor) == ("receipt", 7, staff)
    assert StockLevel.objects.get(product=product).on_hand == 7


def test_no_initial_stock_writes_no_ledger_row(console, category):
    assert console.post(f"{PRODUCTS}add/", product_form(category)).status_code == 302
    assert not StockMovement.objects.exists()
    assert "initial_stock" not in text(console.get(f"{PRODUCTS}{Product.objects.get().pk}/change/"))


def test_initial_stock_cannot_be_negative(console, category):
    response = console.post(f"{PRODUCTS}add/", product_form(category, initial_stock="-1"))
    assert response.status_code == 200
    assert not Product.objects.exists()


# =============================================================================
# Delete or deactivate
# =============================================================================
def test_a_stocked_product_cannot_be_deleted_but_can_be_deactivated(console, product):
    ledger = list(StockMovement.objects.values_list("pk", flat=True))
    page = text(console.get(f"{PRODUCTS}{product.pk}/change/"))
    assert f"{PRODUCTS}{product.pk}/delete/" not in page
    assert f"{PRODUCTS}{product.pk}/deactivate/" in page

    assert console.get(f"{PRODUCTS}{product.pk}/delete/").status_code == 403
    assert console.post(f"{PRODUCTS}{product.pk}/delete/", {"post": "yes"}).status_code == 403
    assert Product.objects.filter(pk=product.pk).exists()
    assert list(StockMovement.objects.values_list("pk", flat=True)) == ledger

    confirm = console.get(f"{PRODUCTS}{product.pk}/deactivate/")
    assert "active" in text(confirm)
    assert "inactive" in text(confirm)
    product.refresh_from_db()
    assert product.is_active  # the confirmation page changes nothing
    response = console.post(f"{PRODUCTS}{product.pk}/deactivate/", {"_bulk_stage": "apply"})
    assert response.status_code == 302
    product.refresh_from_db()
    assert not product.is_active
    assert list(StockMovement.objects.values_list("pk", flat=True)) == ledger


def test_a_never_stocked_product_can_be_deleted(console, make_product):
    product = make_product(sku="NEW-1")
    page = text(console.get(f"{PRODUCTS}{product.pk}/change/"))
    assert f"{PRODUCTS}{product.pk}/delete/" in page
    assert f"{PRODUCTS}{product.pk}/deactivate/" not in page
    response = console.post(f"{PRODUCTS}{product.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not Product.objects.filter(pk=product.pk).exists()


def test_the_list_offers_no_bulk_delete(console, product):
    page = text(console.get(PRODUCTS))
    assert 'value="delete_selected"' not in page
    response = console.post(
        PRODUCTS, {"action": "delete_selected", ACTION_CHECKBOX_NAME: [product.pk], "post": "yes"}
    )
    assert response.status_code == 302  # "no action selected": back to the list
    assert Product.objects.filter(pk=product.pk).exists()


# =============================================================================
# CSV import: preview, confirm
# =============================================================================
def test_preview_counts_new_changed_and_unchanged_and_writes_nothing(console, make_product):
    make_product(sku="SAME-1", name="Same", price_cents=500, on_hand=0)
    make_product(sku="PRICE-1", name="Price", price_cents=500)
    make_product(sku="STOCK-1", name="Stock", price_cents=500)
    before = list(Product.objects.values_list("sku", "price_cents").order_by("sku"))
    upload = csv_upload(
        "SAME-1,Same,Audio,5.00,USD,0,0,true,,",
        "PRICE-1,Price,Audio,6.00,USD,0,0,true,,",
        "STOCK-1,Stock,Audio,5.00,USD,4,0,true,,",
        "NEW-1,New,Audio/Cables,1.00,USD,2,0,true,,",
    )
    response = console.post(IMPORT, {"file": upload}, follow=True)
    page = text(response)
    job = CatalogImportJob.objects.get()
    assert job.status == "previewed"
    assert (job.rows, job.created, job.changed, job.unchanged) == (4, 1, 2, 1)
    for css, count in (("rows", 4), ("new", 1), ("changed", 2), ("unchanged", 1)):
        assert f'<td class="count-{css}">{count}</td>' in page
    assert "Confirm: import 4 rows" in page
    assert list(Product.objects.values_list("sku", "price_cents").order_by("sku")) == before
    assert not StockMovement.objects.exists()
    assert not Category.objects.filter(name="Cables").exists()


def test_preview_shows_every_error_with_line_and_column_and_writes_nothing(console):
    upload = csv_upload(
        "OK-1,Fine,Audio,1.00,USD,1,0,true,,",
        "BAD 1,No SKU,Audio,1.00,USD,1,0,true,,",
        "OK-2,Bad price,Audio,1.999,USD,1,0,maybe,,",
    )
    page = text(console.post(IMPORT, {"file": upload}, follow=True))
    job = CatalogImportJob.objects.get()
    assert (job.status, job.bad_rows, job.error_count) == ("rejected", 2, 3)
    errors = re.findall(r"<tr><td>(\d+)</td><td>([\w—]+)</td><td>([^<]+)</td></tr>", page)
    assert [(line, column) for line, column, _ in errors] == [
        ("3", "sku"),
        ("4", "price"),
        ("4", "is_active"),
    ]
    assert "Nothing was imported" in page
    assert "Confirm" not in page
    assert not Product.objects.exists()
    assert not Category.objects.exists()
    assert job.content == b""  # a rejected file is not kept


def test_confirm_imports_exactly_what_the_command_would(console, staff, make_product, tmp_path):
    make_product(sku="OLD-1", name="Old", price_cents=100, on_hand=5)
    lines = [
        "OLD-1,Old renamed,Audio,2.50,USD,3,1,true,,",
        'NEW-1,Cotton Tee,Clothing/Men,19.99,USD,12,3,true,Soft tee,"{""size"": ""M""}"',
        "NEW-2,Mug,Home/Kitchen,8.5,,0,,false,,",
    ]
    path = tmp_path / "products.csv"
    path.write_text("\n".join([HEADER, *lines]) + "\n")

    with transaction.atomic():  # the command's outcome, then rolled back
        call_command("import_catalog", str(path), "--no-progress", stdout=io.StringIO())
        by_command = catalog_state()
        transaction.set_rollback(True)
    assert Product.objects.count() == 1

    console.post(IMPORT, {"file": SimpleUploadedFile("products.csv", path.read_bytes())})
    job = CatalogImportJob.objects.get()
    response = console.post(f"{IMPORT}{job.pk}/confirm/", follow=True)
    assert "Imported products.csv: 2 new, 1 changed, 0 unchanged." in text(response)
    assert catalog_state() == by_command
    job.refresh_from_db()
    assert (job.status, job.created, job.changed, job.stock_movements) == ("done", 2, 1, 2)
    # Confirming again imports nothing more.
    response = console.post(f"{IMPORT}{job.pk}/confirm/", follow=True)
    assert "imported already" in text(response)
    assert StockMovement.objects.filter(reason="import").count() == 2


def catalog_state():
    return {
        "products": sorted(
            Product.objects.values_list(
                "sku",
                "name",
                "slug",
                "category__full_path",
                "price_cents",
                "currency",
                "is_active",
                "description",
                "metadata",
                "stock__on_hand",
                "stock__low_stock_threshold",
            )
        ),
        "ledger": sorted(
            StockMovement.objects.values_list(
                "product__sku", "reason", "delta_on_hand", "on_hand_after", "reference", "actor"
            )
        ),
        "categories": sorted(Category.objects.values_list("full_path", flat=True)),
    }


def test_a_large_file_runs_on_a_worker_with_a_progress_page(console, run_outbox):
    rows = LARGE_FILE_ROWS + 100
    upload = csv_upload(
        *(f"BULK-{n:05d},Bulk item {n},Bulk/Items,{n}.25,USD,{n % 7},1,true,," for n in range(rows))
    )
    response = console.post(IMPORT, {"file": upload})
    job = CatalogImportJob.objects.get()
    assert response["Location"] == f"{IMPORT}{job.pk}/"
    assert (job.status, job.in_background) == ("preview_queued", True)
    assert bytes(job.content).startswith(HEADER.encode())  # a worker elsewhere reads it here
    message = OutboxMessage.objects.get(task="inventory.tasks.run_catalog_import_job")
    assert message.kwargs == {"job_id": job.pk}
    page = text(console.get(f"{IMPORT}{job.pk}/"))
    assert '<meta http-equiv="refresh"' in page
    assert "<progress" in page

    assert run_outbox() == 1
    page = text(console.get(f"{IMPORT}{job.pk}/"))
    assert '<meta http-equiv="refresh"' not in page
    assert f'<td class="count-new">{rows}</td>' in page
    assert not Product.objects.exists()

    console.post(f"{IMPORT}{job.pk}/confirm/")
    assert text(console.get(f"{IMPORT}{job.pk}/")).count("<progress") == 1
    assert run_outbox() == 1
    page = text(console.get(f"{IMPORT}{job.pk}/"))
    job.refresh_from_db()
    assert job.status == "done"
    assert "Imported: the catalog now matches the file." in page
    assert f'<td class="count-new">{rows}</td>' in page
    assert Product.objects.count() == rows
    assert job.content == b""


def test_a_job_is_run_once_even_if_its_message_comes_twice(console, run_outbox):
    from inventory.tasks import run_catalog_import_job

    upload = csv_upload(*(f"X-{n},X,Bulk,1.00,USD,1,0,true,," for n in range(LARGE_FILE_ROWS + 1)))
    console.post(IMPORT, {"file": upload})
    run_outbox()
    job = CatalogImportJob.objects.get()
    console.post(f"{IMPORT}{job.pk}/confirm/")
    run_outbox()
    run_catalog_import_job(job_id=job.pk)  # a late duplicate
    assert StockMovement.objects.count() == LARGE_FILE_ROWS + 1


def test_an_upload_that_is_not_csv_is_rejected_with_its_reason(console):
    upload = SimpleUploadedFile("products.csv", b"\xff\xfe not utf-8")
    page = text(console.post(IMPORT, {"file": upload}, follow=True))
    assert "<tr><td>1</td><td>—</td><td>the file is not UTF-8</td></tr>" in page  # its header
    assert "Nothing was imported: 1 problem." in page
    assert CatalogImportJob.objects.get().status == "rejected"


# =============================================================================
# CSV export
# =============================================================================
def test_export_downloads_the_catalog_and_it_round_trips(console, make_product, tmp_path):
    make_product(sku="EXP-1", name='Lamp, "big"', price_cents=197995, on_hand=4)
    make_product(sku="EXP-2", name="Cable", metadata={"length": 2}, is_active=False)
    response = console.get(EXPORT)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"].startswith("attachment;")
    body = b"".join(response.streaming_content)
    lines = body.decode().splitlines()
    assert lines[0] == HEADER
    assert len(lines) == 3
    assert "1979.95" in lines[1]
    path = tmp_path / "export.csv"
    path.write_bytes(body)
    result = import_catalog(path, dry_run=True)
    assert (result.ok, result.rows, result.rows_unchanged) == (True, 2, 2)


def test_export_of_the_filtered_list_and_of_a_selection(console, make_product):
    low = make_product(sku="LOW-1", on_hand=1, low_stock_threshold=2)
    make_product(sku="FULL-1", on_hand=10)
    filtered = b"".join(console.get(f"{EXPORT}?stock=low").streaming_content).decode()
    assert [line.split(",")[0] for line in filtered.splitlines()] == ["sku", "LOW-1"]
    response = console.post(
        PRODUCTS, {"action": "export_selected", ACTION_CHECKBOX_NAME: [low.pk], "index": "0"}
    )
    selected = b"".join(response.streaming_content).decode()
    assert [line.split(",")[0] for line in selected.splitlines()] == ["sku", "LOW-1"]


# =============================================================================
# Bulk actions
# =============================================================================
def bulk(client, action: str, products, **fields: str):
    data = {"action": action, ACTION_CHECKBOX_NAME: [p.pk for p in products], **fields}
    return client.post(PRODUCTS, data)


@pytest.mark.parametrize(
    ("cents", "percent", "expected"),
    [
        (1999, "10", 2199),  # 21.989 → 21.99
        (1001, "-15", 851),  # 8.5085 → 8.51
        (5, "-50", 3),  # 0.025 → 0.03 (half up)
        (1000, "2.5", 1025),
        (1000, "-100", 0),
        (1000, "-150", 0),  # never below 0
        (0, "10", 0),
    ],
)
def test_price_after_percent(cents, percent, expected):
    assert price_after_percent(cents, Decimal(percent)) == expected


def test_change_price_by_a_percentage_through_its_confirmation(console, make_product):
    first = make_product(sku="P-1", price_cents=1999, on_hand=2)
    second = make_product(sku="P-2", price_cents=1001)
    ledger = StockMovement.objects.count()
    form = text(bulk(console, "change_price", [first, second]))
    assert "2 products selected" in form
    assert 'name="percent"' in form

    confirm = text(
        bulk(console, "change_price", [first, second], percent="+10", _bulk_stage="preview")
    )
    assert re.search(r"\$19\.99</td><td><strong>\$21\.99", confirm)
    assert re.search(r"\$10\.01</td><td><strong>\$11\.01", confirm)
    first.refresh_from_db()
    assert first.price_cents == 1999  # nothing changed yet

    response = bulk(console, "change_price", [first, second], percent="10", _bulk_stage="apply")
    assert response.status_code == 302
    assert dict(Product.objects.values_list("sku", "price_cents")) == {"P-1": 2199, "P-2": 1101}
    assert StockMovement.objects.count() == ledger

    bulk(console, "change_price", [first, second], percent="-15", _bulk_stage="apply")
    assert dict(Product.objects.values_list("sku", "price_cents")) == {"P-1": 1869, "P-2": 936}


def test_a_bad_percentage_shows_the_form_again(console, make_product):
    product = make_product(price_cents=1000)
    page = text(bulk(console, "change_price", [product], percent="-101", _bulk_stage="preview"))
    assert 'name="percent"' in page
    assert "Show what will change" in page
    product.refresh_from_db()
    assert product.price_cents == 1000


def test_move_to_a_category_through_its_confirmation(console, make_product, category):
    lighting = category_create(name="Lamps", parent=category_create(name="Home"))
    moving = make_product(sku="M-1")
    staying = make_product(sku="M-2", category=lighting)
    assert 'name="category"' in text(bulk(console, "move_to_category", [moving, staying]))
    confirm = text(
        bulk(
            console,
            "move_to_category",
            [moving, staying],
            category=str(lighting.pk),
            _bulk_stage="preview",
        )
    )
    assert "1 product will change; 1 already matches" in confirm
    assert "Audio</td><td><strong>Home/Lamps" in confirm
    moving.refresh_from_db()
    assert moving.category == category
    bulk(
        console,
        "move_to_category",
        [moving, staying],
        category=str(lighting.pk),
        _bulk_stage="apply",
    )
    assert set(Product.objects.values_list("category__full_path", flat=True)) == {"Home/Lamps"}


def test_deactivate_and_activate_through_their_confirmation(console, make_product):
    products = [make_product(sku="A-1", on_hand=1), make_product(sku="A-2")]
    confirm = text(bulk(console, "deactivate", products))
    assert "2 products will change" in confirm
    assert "active</td><td><strong>inactive" in confirm
    assert Product.objects.filter(is_active=True).count() == 2
    bulk(console, "deactivate", products, _bulk_stage="apply")
    assert not Product.objects.filter(is_active=True).exists()
    assert "inactive</td><td><strong>active" in text(bulk(console, "activate", products))
    bulk(console, "activate", products, _bulk_stage="apply")
    assert Product.objects.filter(is_active=True).count() == 2
    assert StockMovement.objects.count() == 1  # A-1's initial receipt only


# =============================================================================
# Who can reach it
# =============================================================================
CONSOLE_PAGES = [IMPORT, EXPORT, f"{PRODUCTS}1/deactivate/"]


@pytest.mark.parametrize("path", CONSOLE_PAGES)
def test_anonymous_and_customers_are_sent_to_the_login(path, customer, product):
    anonymous, signed_in = Client(), Client()
    signed_in.force_login(customer)
    for client in (anonymous, signed_in):
        response = client.get(path)
        assert response.status_code == 302
        assert "/admin/login/" in response["Location"]


def test_customers_cannot_run_bulk_actions_or_imports(customer, product):
    client = Client()
    client.force_login(customer)
    response = bulk(client, "change_price", [product], percent="50", _bulk_stage="apply")
    assert "/admin/login/" in response["Location"]
    response = client.post(IMPORT, {"file": csv_upload("X-1,X,Audio,1.00,USD,1,0,true,,")})
    assert "/admin/login/" in response["Location"]
    product.refresh_from_db()
    assert product.price_cents == 1000 + 1
    assert not CatalogImportJob.objects.exists()


def test_staff_without_the_product_permissions_cannot_import(make_user):
    outsider = make_user("staff")
    outsider.groups.clear()
    client = Client()
    client.force_login(outsider)
    assert client.get(IMPORT).status_code == 403
    assert client.get(EXPORT).status_code == 403


@pytest.mark.django_db(transaction=True)
def test_a_running_job_shows_its_progress_before_the_import_commits(staff):
    """The import is one transaction; its progress is written beside it, so the page sees it."""
    from inventory.bulk import _ProgressRecorder

    job = baker.make(CatalogImportJob, size=1000, status="importing", in_background=True)
    recorder = _ProgressRecorder(job.pk)
    try:
        with transaction.atomic():  # the import's transaction, which then rolls back
            Product.objects.exists()
            recorder(2048, 500, 1000)
            transaction.set_rollback(True)
    finally:
        recorder.close()
    job.refresh_from_db()
    assert (job.rows_read, job.bytes_read) == (2048, 500)
    client = Client()
    client.force_login(staff)
    page = text(client.get(f"{IMPORT}{job.pk}/"))
    assert "50% · 2048 rows read" in page
