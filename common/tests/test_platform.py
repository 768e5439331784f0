import shutil
import uuid
from pathlib import Path

import psycopg
import pytest
from django.conf import settings

pytestmark = pytest.mark.django_db


def test_pagination_defaults_and_cap():
    from common.pagination import PageNumberPagination

    assert PageNumberPagination.page_size == 20
    assert PageNumberPagination.max_page_size == 100


def test_cors_allows_only_listed_origins(api_client, settings):
    settings.CORS_ALLOWED_ORIGINS = ["https://shop.example.com"]
    allowed = api_client.get("/api/schema/", HTTP_ORIGIN="https://shop.example.com")
    other = api_client.get("/api/schema/", HTTP_ORIGIN="https://evil.example.net")
    assert allowed["Access-Control-Allow-Origin"] == "https://shop.example.com"
    assert "Access-Control-Allow-Origin" not in other
    assert "X-Request-ID" in allowed["Access-Control-Expose-Headers"]


def test_embedded_postgres_starts_on_demand():
    """Without DATABASE_URL the app runs on a PostgreSQL it starts itself (pgserver)."""
    import pgserver

    from common.embedded_postgres.base import ensure_server

    data_dir = Path(settings.BASE_DIR) / ".data" / f"t-{uuid.uuid4().hex[:8]}"
    try:
        ensure_server(str(data_dir))
        ensure_server(str(data_dir))  # a second call in the same process is free
        with psycopg.connect(dbname="postgres", user="postgres", host=str(data_dir)) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        # get_server hands back the handle ensure_server opened (which never stops the server).
        server = pgserver.get_server(str(data_dir))
        server.cleanup_mode = "stop"
        server.cleanup()
        shutil.rmtree(data_dir, ignore_errors=True)
