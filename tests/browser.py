"""Shared pieces of the browser tests: headless Chromium (Debian's package, driven by Playwright)
against pytest-django's live server, one browser and one live server per test session.

Set `SCREENSHOTS_DIR` to keep the screenshots (the README's come from
`SCREENSHOTS_DIR=docs/screenshots make pytest PYTEST_ARGS="tests/test_browser_*.py"`)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from accounts.models import User

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
PASSWORD = "correct-horse-battery-staple"  # the `make_user` fixture's default

# Every browser test module: a live server (so transactional tests) and Debian's chromium.
browser_marks = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium (.ci/run)"),
]


def sign_in(browser: Any, live_server: Any, user: User, *, width: int = 1280) -> Any:
    """A new page signed in to the admin as `user`, on the admin index."""
    page = browser.new_page(viewport={"width": width, "height": 900})
    page.goto(f"{live_server.url}/admin/login/?next=/admin/")
    page.fill("#id_username", user.email)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{live_server.url}/admin/")
    return page


def screenshot(page: Any, name: str, *, full_page: bool = True) -> None:
    directory = os.environ.get("SCREENSHOTS_DIR")
    if directory:
        Path(directory).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(directory) / name), full_page=full_page)


def no_horizontal_scroll(page: Any) -> bool:
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"))
