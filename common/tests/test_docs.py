"""The API docs work offline: every asset they load is served by the app itself."""

import re

import pytest
from django.contrib.staticfiles import finders

pytestmark = pytest.mark.django_db

ASSET = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']""")
EXTERNAL = re.compile(r"https?://|//[a-z0-9.-]+\.[a-z]{2,}", re.IGNORECASE)


@pytest.mark.parametrize("path", ["/api/docs/", "/api/redoc/"])
def test_docs_pages_load_only_local_assets(api_client, path):
    response = api_client.get(path)
    assert response.status_code == 200
    html = response.content.decode()
    assets = ASSET.findall(html)
    assert assets, "the page should load its scripts"
    for asset in assets:
        assert not EXTERNAL.match(asset), f"{path} loads {asset} from another host"
        if asset.startswith("/static/"):
            assert finders.find(asset.removeprefix("/static/")), f"{asset} is not served"
    # Nothing inline points elsewhere either (e.g. a CDN or font URL built in a script).
    assert not re.search(r"https?://", html), "the page names an absolute URL"


def test_schema_is_yaml_by_default(api_client):
    response = api_client.get("/api/schema/")
    assert response.status_code == 200
    assert response.content.startswith(b"openapi: 3.")


def test_admin_login_page_renders_with_its_css(client):
    response = client.get("/admin/login/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Shop backend administration" in html
    css = [a for a in ASSET.findall(html) if a.endswith(".css")]
    assert css
    for asset in css:
        assert finders.find(asset.removeprefix("/static/"))


def test_metrics_are_exported(api_client, settings):
    """To this host without a token (the door itself: tests/test_metrics.py)."""
    settings.METRICS_TOKEN = ""
    api_client.get("/healthz")
    response = api_client.get("/metrics", REMOTE_ADDR="127.0.0.1")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    assert b"django_http_requests_total_by_method_total" in response.content
    assert b"shop_orders_placed_total" in response.content
