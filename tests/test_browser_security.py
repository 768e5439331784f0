"""The Content-Security-Policy in a real browser: the API docs and the admin load under it with
no request to another host and no violation, and staff sign in with two-factor codes (see
tests/browser.py)."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlsplit

import pytest
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import User
from inventory.services import category_create, product_create
from tests.browser import PASSWORD, browser_marks, sign_in

pytestmark = browser_marks

# Set before any script of the page runs (Playwright's init scripts are not subject to the CSP).
RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push(`${event.violatedDirective} ${event.blockedURI}`);
});
"""


class Watch:
    """The hosts a page asks for and the CSP violations it meets (console and DOM events)."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.hosts: set[str] = set()
        self.console: list[str] = []
        page.add_init_script(RECORD_VIOLATIONS)
        page.on("request", self._request)
        page.on("console", self._console)

    def _request(self, request: Any) -> None:
        url = request.url
        if url.startswith("data:"):
            return
        if url.startswith("blob:"):  # blob:http://host:port/uuid: made by the page itself
            url = url.removeprefix("blob:")
        self.hosts.add(urlsplit(url).netloc)

    def _console(self, message: Any) -> None:
        if "Content Security Policy" in message.text or "Content-Security-Policy" in message.text:
            self.console.append(message.text)

    def violations(self) -> list[str]:
        events: list[str] = self.page.evaluate("window.__cspViolations || []")
        return [*self.console, *events]


def assert_policy(response: Any) -> None:
    policy = response.headers.get("content-security-policy", "")
    assert "default-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    assert "script-src 'self';" in policy


@pytest.fixture
def catalog() -> None:
    product_create(
        sku="HP-100", name="Studio Headphones", category=category_create(name="Audio"),
        price_cents=4999, on_hand=3,
    )  # fmt: skip


def test_redoc_loads_under_the_policy_from_this_server_alone(browser, live_server, catalog):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    watch = Watch(page)
    response = page.goto(f"{live_server.url}/api/redoc/")
    assert response.status == 200
    assert_policy(response)
    page.get_by_text("Shop backend API").first.wait_for()
    page.get_by_text("API docs by Redocly").wait_for()  # the sidebar footer, logo and all
    page.locator("[data-section-id]").first.wait_for()
    page.wait_for_load_state("networkidle")

    assert watch.hosts == {urlsplit(live_server.url).netloc}
    assert watch.violations() == []
    page.close()


def test_swagger_ui_loads_under_the_policy_and_tries_an_endpoint(browser, live_server, catalog):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    watch = Watch(page)
    response = page.goto(f"{live_server.url}/api/docs/")
    assert response.status == 200
    assert_policy(response)
    operation = page.locator(".opblock-get", has=page.locator('[data-path="/api/v1/products/"]'))
    operation.first.locator(".opblock-summary").click()
    page.get_by_role("button", name="Try it out").first.click()
    page.get_by_role("button", name="Execute").first.click()
    status = page.locator(".live-responses-table tbody .response-col_status").first
    status.wait_for()
    assert status.inner_text() == "200"
    page.wait_for_load_state("networkidle")

    assert watch.hosts == {urlsplit(live_server.url).netloc}
    assert watch.violations() == []
    page.close()


def code_for(device: TOTPDevice, *, steps_ahead: int = 0) -> str:
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = time.time() + steps_ahead * device.step
    return f"{totp.token():0{device.digits}d}"


def test_staff_enrol_and_sign_in_with_a_code_under_the_policy(
    browser, live_server, make_user, catalog
):
    staff = make_user(User.Role.STAFF, email="sam@example.com")
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    watch = Watch(page)
    response = page.goto(f"{live_server.url}/admin/login/?next=/admin/")
    assert response.status == 200
    assert_policy(response)
    page.close()

    # Password only while no device is enrolled (what every other browser test does).
    page = sign_in(browser, live_server, staff)
    watch = Watch(page)
    page.goto(f"{live_server.url}/admin/two-factor/")
    qr_code = page.locator("#totp-qr-code")
    assert qr_code.evaluate("image => image.complete && image.naturalWidth > 0")
    device = TOTPDevice.objects.get(user=staff, confirmed=False)
    page.fill("#id_code", code_for(device))
    page.click("input[type=submit]")
    codes = page.locator("#recovery-codes li")
    codes.first.wait_for()
    assert codes.count() == 10
    page.goto(f"{live_server.url}/admin/inventory/product/")
    assert page.get_by_role("link", name="HP-100").is_visible()
    assert watch.violations() == []
    page.close()

    # From now on the password alone is not enough; with the next code, staff get in.
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    watch = Watch(page)
    page.goto(f"{live_server.url}/admin/login/?next=/admin/")
    page.fill("#id_username", staff.email)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    assert "enter the 6-digit code" in page.locator(".errornote").first.inner_text()
    page.fill("#id_password", PASSWORD)
    page.fill("#id_otp_token", code_for(device, steps_ahead=1))
    page.click("input[type=submit]")
    page.wait_for_url(f"{live_server.url}/admin/")
    assert page.locator(".shop-dashboard").is_visible()
    assert watch.hosts == {urlsplit(live_server.url).netloc}
    assert watch.violations() == []
    page.close()
