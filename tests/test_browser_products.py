"""The staff console's product pages in a real browser (see tests/browser.py for how and for
screenshots): the list at 1280 px, an adjustment reaching the ledger, a CSV import."""

from __future__ import annotations

import io
from typing import Any

import pytest
from PIL import Image

from inventory.catalog_csv import COLUMNS
from inventory.images import product_image_create
from inventory.models import Product, StockMovement
from inventory.services import category_create, product_create
from tests.browser import browser_marks, no_horizontal_scroll, screenshot, sign_in

pytestmark = browser_marks

HEADER = ",".join(COLUMNS)


def table_fits(page: Any) -> bool:
    """The list's own box does not scroll sideways either (Django lets it, inside the page)."""
    return bool(
        page.evaluate(
            "(() => { const box = document.querySelector('#changelist .results');"
            " return box.scrollWidth <= box.clientWidth + 1; })()"
        )
    )


@pytest.fixture(autouse=True)
def media_root(settings: Any, tmp_path: Any) -> Any:
    """Images go to the test's own directory, never into the repository's media/."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    }
    return settings.MEDIA_ROOT


def png(colour: str) -> io.BytesIO:
    content = io.BytesIO()
    Image.new("RGB", (120, 120), colour).save(content, "PNG")
    content.seek(0)
    return content


@pytest.fixture
def catalog() -> list[Product]:
    """A dozen products with long names, a few low on stock, two with a picture."""
    audio = category_create(name="Audio")
    headphones = category_create(name="Over-Ear Headphones", parent=audio)
    kitchen = category_create(name="Kitchen", parent=category_create(name="Home"))
    products = []
    for number in range(12):
        products.append(
            product_create(
                sku=f"SKU-{number:05d}",
                name=f"Studio Reference Closed-Back Headphones, Walnut Edition No. {number}",
                category=headphones if number % 2 else kitchen,
                price_cents=197995 + number,
                on_hand=number,
                low_stock_threshold=3,
            )
        )
    for product, colour in zip(products[:2], ("teal", "orange"), strict=True):
        product_image_create(product=product, upload=png(colour), alt=product.name)
    return products


def test_the_product_list_fits_1280_px_and_filters_low_stock(browser, live_server, staff, catalog):
    page = sign_in(browser, live_server, staff, width=1280)
    page.goto(f"{live_server.url}/admin/inventory/product/")
    headers = page.locator("#result_list thead th").all_inner_texts()
    assert [header.strip().lower() for header in headers[1:]] == [
        "image",
        "sku",
        "name",
        "price",
        "available",
        "active",
    ]
    assert page.locator("#result_list tbody tr").count() == 12
    assert page.locator("#result_list img.product-thumb").count() == 2
    assert page.get_by_text("$1,979.95", exact=True).is_visible()
    assert "Home/Kitchen" in page.locator("#result_list tbody tr").first.inner_text()
    assert no_horizontal_scroll(page)
    assert table_fits(page)
    screenshot(page, "product-list.png")

    page.get_by_role("link", name="Low (available ≤ threshold)").click()
    page.wait_for_url("**/admin/inventory/product/?stock=low")
    skus = page.locator("#result_list tbody .field-sku").all_inner_texts()
    assert sorted(skus) == ["SKU-00000", "SKU-00001", "SKU-00002", "SKU-00003"]
    assert no_horizontal_scroll(page)
    page.close()


def test_an_adjustment_reaches_the_ledger(browser, live_server, staff, catalog):
    product = catalog[5]
    page = sign_in(browser, live_server, staff, width=1280)
    page.goto(f"{live_server.url}/admin/inventory/product/{product.pk}/change/")
    page.get_by_role("link", name="Adjust stock").first.click()
    page.wait_for_url(f"**/admin/inventory/product/{product.pk}/adjust-stock/")
    page.fill("#id_delta", "-2")
    page.select_option("#id_reason", "damage")
    page.fill("#id_note", "dropped in the warehouse")
    screenshot(page, "product-adjust.png")
    page.get_by_role("button", name="Adjust").click()
    page.wait_for_url(f"**/admin/inventory/product/{product.pk}/change/")
    assert "SKU-00005: -2 (damage); now 3 on hand." in page.locator(".messagelist").inner_text()
    recent = page.locator(".field-recent_movements table tbody tr").first.inner_text()
    assert "damage" in recent
    assert "dropped in the warehouse" in recent

    page.goto(f"{live_server.url}/admin/inventory/stockmovement/?reason__exact=damage")
    rows = page.locator("#result_list tbody tr")
    assert rows.count() == 1
    assert "SKU-00005" in rows.first.inner_text()
    movement = StockMovement.objects.get(reason="damage")
    assert (movement.delta_on_hand, movement.actor_id) == (-2, staff.pk)
    page.close()


def test_a_csv_import_shows_its_errors_then_imports_the_fixed_file(
    browser, live_server, staff, catalog, tmp_path
):
    bad = tmp_path / "new-products.csv"
    bad.write_text(
        "\n".join(
            [
                HEADER,
                "LAMP-1,Desk Lamp,Home/Lighting,24.90,USD,8,2,true,Warm light,",
                "LAMP 2,Floor Lamp,Home/Lighting,12.5.0,USD,-1,0,true,,",
                "SKU-00001,Renamed headphones,Audio/Over-Ear Headphones,1979.96,USD,1,3,true,,",
            ]
        )
        + "\n"
    )
    page = sign_in(browser, live_server, staff, width=1280)
    page.goto(f"{live_server.url}/admin/inventory/product/")
    page.get_by_role("link", name="Import CSV").click()
    page.wait_for_url("**/admin/inventory/product/import-csv/")
    page.set_input_files("#id_file", str(bad))
    page.get_by_role("button", name="Check the file").click()
    page.wait_for_selector(".import-errors")
    errors = page.locator(".import-errors tbody tr").all_inner_texts()
    assert [row.split("\t")[:2] for row in errors] == [
        ["3", "sku"],
        ["3", "price"],
        ["3", "stock"],
    ]
    assert page.get_by_role("button", name="Confirm").count() == 0
    assert no_horizontal_scroll(page)
    screenshot(page, "csv-preview.png")
    assert not Product.objects.filter(sku="LAMP-1").exists()

    fixed = tmp_path / "new-products-fixed.csv"
    fixed.write_text(
        bad.read_text().replace(
            "LAMP 2,Floor Lamp,Home/Lighting,12.5.0,USD,-1",
            "LAMP-2,Floor Lamp,Home/Lighting,12.50,USD,1",
        )
    )
    page.get_by_role("link", name="Upload a corrected file").click()
    page.set_input_files("#id_file", str(fixed))
    page.get_by_role("button", name="Check the file").click()
    page.wait_for_selector(".import-counts")
    assert page.locator(".count-new").inner_text() == "2"
    assert page.locator(".count-changed").inner_text() == "1"
    assert page.locator(".count-unchanged").inner_text() == "0"
    page.get_by_role("button", name="Confirm: import 3 rows").click()
    page.wait_for_selector("text=Imported: the catalog now matches the file.")
    page.get_by_role("link", name="See the products").click()
    page.fill("#searchbar", "lamp")
    page.press("#searchbar", "Enter")
    page.wait_for_url("**/admin/inventory/product/?q=lamp")
    skus = page.locator("#result_list tbody .field-sku").all_inner_texts()
    assert sorted(skus) == ["LAMP-1", "LAMP-2"]
    assert "$24.90" in page.locator("#result_list").inner_text()
    assert Product.objects.get(sku="SKU-00001").name == "Renamed headphones"
    page.close()
