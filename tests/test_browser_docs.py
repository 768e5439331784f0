"""The API docs in a real browser: Swagger UI works offline (every asset from this server) and
"Try it out" on the product list gets a 200 from the API (see tests/browser.py)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from inventory.services import category_create, product_create
from tests.browser import browser_marks, screenshot

pytestmark = browser_marks


def test_swagger_ui_loads_offline_and_tries_the_product_list(browser: Any, live_server: Any):
    product_create(
        sku="HP-100", name="Studio Headphones", category=category_create(name="Audio"),
        price_cents=4999, on_hand=3,
    )  # fmt: skip
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    hosts: set[str] = set()
    page.on("request", lambda request: hosts.add(urlsplit(request.url).netloc))
    answers: list[Any] = []
    page.on(
        "response",
        lambda response: answers.append(response) if "/api/v1/products/" in response.url else None,
    )

    page.goto(f"{live_server.url}/api/docs/")
    operation = page.locator(".opblock-get", has=page.locator('[data-path="/api/v1/products/"]'))
    operation.first.locator(".opblock-summary").click()
    page.get_by_role("button", name="Try it out").first.click()
    page.get_by_role("button", name="Execute").first.click()
    status = page.locator(".live-responses-table tbody .response-col_status").first
    status.wait_for()

    assert status.inner_text() == "200"
    assert "HP-100" in page.locator(".live-responses-table .microlight").first.inner_text()
    assert [response.status for response in answers] == [200]
    assert hosts == {urlsplit(live_server.url).netloc}  # nothing from a CDN or anywhere else
    page.locator(".responses-wrapper").first.scroll_into_view_if_needed()
    page.mouse.wheel(0, -250)
    screenshot(page, "swagger-try-it-out.png", full_page=False)
    page.close()
