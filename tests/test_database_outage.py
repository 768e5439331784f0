"""A database outage is a clean 503 with `Retry-After`, never a 500, and recovering from it needs
no restart (API.md, Conventions; common/exceptions.py).

The faults are real: the request's own PostgreSQL backend is terminated from a second connection
(as a restart, a failover or an administrator would), or the server is made unreachable. The
tests commit for real (`transaction=True`), so "nothing half-written" is checked in the database
itself, not inside a test transaction.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
from django.db import OperationalError, close_old_connections, connection
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.test import Client
from django.urls import path

from config.urls import urlpatterns as real_urlpatterns
from inventory.models import Product, StockLevel, StockMovement
from inventory.services import category_create, product_create
from orders.models import CartItem, Order, OrderEvent, OrderItem
from orders.services import cart_item_add
from orders.tests.conftest import ADDRESS

pytestmark = pytest.mark.django_db(transaction=True)

ORDERS = "/api/v1/orders/"


# --- a plain Django view and a middleware, for the non-DRF paths ------------------------------


def plain_view(request: HttpRequest) -> HttpResponse:
    """A non-DRF view whose query meets a dead database."""
    raise OperationalError("server closed the connection unexpectedly")


class SessionSaveFailsMiddleware:
    """Fails after the view, as SessionMiddleware does saving a session to a dead database."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        self.get_response(request)
        raise OperationalError("terminating connection due to administrator command")


urlpatterns = [path("plain-view/", plain_view), *real_urlpatterns]
handler500 = "common.exceptions.handler500"


# --- faults -----------------------------------------------------------------------------------


def terminate_backend(pid: int) -> None:
    """End a PostgreSQL backend from outside, waiting until it is gone."""
    with psycopg.connect(**connection.get_connection_params(), autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s, 5000)", [pid])


def own_backend_pid() -> int:
    connection.ensure_connection()
    assert connection.connection is not None
    pid: int = connection.connection.info.backend_pid
    return pid


@contextmanager
def connection_killed_before(statement: str) -> Iterator[list[str]]:
    """Terminate the connection that is about to run the first SQL starting with `statement`,
    then let the statement run on it (it fails as it would after a database restart)."""
    killed: list[str] = []

    def kill_then_run(
        execute: Callable[..., Any], sql: str, params: Any, many: bool, context: dict[str, Any]
    ) -> Any:
        if not killed and sql.startswith(statement):
            terminate_backend(context["connection"].connection.info.backend_pid)
            killed.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(kill_then_run):
        yield killed


def unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def assert_service_unavailable(response: Any) -> None:
    assert response.status_code == 503, response.content
    assert response["Retry-After"] == "5"
    body = response.json()
    assert body["type"] == "server_error"
    assert [(error["code"], error["attr"]) for error in body["errors"]] == [
        ("service_unavailable", None)
    ]
    assert "Traceback" not in response.content.decode()


def no_traceback_logged(caplog: pytest.LogCaptureFixture) -> bool:
    """An outage is not a bug: logged as one line (Django also logs the 503 itself), without the
    traceback and error report a 500 gets."""
    return not [record for record in caplog.records if record.exc_info]


# --- checkout -----------------------------------------------------------------------------------


@pytest.fixture
def cart(customer: Any) -> list[Product]:
    category = category_create(name="Audio")
    headphones = product_create(
        sku="HP-1", name="Headphones", category=category, price_cents=4999, on_hand=10
    )
    cable = product_create(sku="CB-1", name="Cable", category=category, price_cents=250, on_hand=5)
    cart_item_add(user=customer, product_id=headphones.pk, quantity=2)
    cart_item_add(user=customer, product_id=cable.pk, quantity=3)
    return [headphones, cable]


def stock_levels(products: list[Product]) -> list[tuple[int, int]]:
    return [
        (level.on_hand, level.reserved)
        for level in StockLevel.objects.filter(product__in=products).order_by("product_id")
    ]


@pytest.mark.parametrize(
    "statement",
    [
        pytest.param('INSERT INTO "orders_order" ', id="at-the-order-insert"),
        pytest.param('UPDATE "inventory_stocklevel" ', id="at-the-stock-reservation"),
    ],
)
def test_checkout_whose_connection_dies_is_a_503_and_the_retry_succeeds(
    customer, customer_client, cart, statement, caplog
):
    headers = {"HTTP_IDEMPOTENCY_KEY": "checkout-attempt-1"}
    with connection_killed_before(statement) as killed:
        response = customer_client.post(
            ORDERS, {"shipping_address": ADDRESS}, format="json", **headers
        )
    assert killed, f"no statement started with {statement!r}"
    assert_service_unavailable(response)
    assert no_traceback_logged(caplog)
    # Nothing half-written: no order, no line, no event, nothing reserved, the cart as it was.
    assert not Order.objects.exists()
    assert not OrderItem.objects.exists()
    assert not OrderEvent.objects.exists()
    assert not StockMovement.objects.filter(reason="reservation").exists()
    assert stock_levels(cart) == [(10, 0), (5, 0)]
    assert list(
        CartItem.objects.filter(cart__user=customer)
        .order_by("product_id")
        .values_list("product_id", "quantity")
    ) == [(cart[0].pk, 2), (cart[1].pk, 3)]

    # The client retries as told, with the same key: the same process checks out at once.
    retry = customer_client.post(ORDERS, {"shipping_address": ADDRESS}, format="json", **headers)
    assert retry.status_code == 201, retry.content
    assert "Idempotent-Replayed" not in retry  # the failed attempt stored no response
    order = Order.objects.get()
    assert order.items.count() == 2
    assert stock_levels(cart) == [(10, 2), (5, 3)]
    assert not CartItem.objects.filter(cart__user=customer).exists()


# --- a connection that died between requests ----------------------------------------------------


def test_a_connection_killed_between_requests_is_replaced_before_the_next_query(
    customer_client,
):
    """With CONN_HEALTH_CHECKS, Django checks a reused connection when a request starts (its
    WSGI handler sends request_started → close_old_connections; the test client does not, so it
    is called here): the first request after the kill already works."""
    assert customer_client.get(ORDERS).status_code == 200
    terminate_backend(own_backend_pid())
    close_old_connections()  # what every real request does first
    assert customer_client.get(ORDERS).status_code == 200


def test_without_the_start_of_request_check_an_outage_costs_one_503(customer_client, caplog):
    """Even where nothing checks the connection first, the request that meets the dead
    connection is a 503, and the handler drops that connection: the next request reconnects."""
    assert customer_client.get(ORDERS).status_code == 200
    dead = own_backend_pid()
    terminate_backend(dead)
    assert_service_unavailable(customer_client.get(ORDERS))
    assert no_traceback_logged(caplog)
    assert any(record.name == "shop.database" for record in caplog.records)
    assert customer_client.get(ORDERS).status_code == 200
    assert own_backend_pid() != dead


def test_an_unreachable_database_is_a_503_until_it_answers_again(customer_client, monkeypatch):
    connection.close()
    with monkeypatch.context() as outage:
        outage.setitem(connection.settings_dict, "PORT", str(unused_port()))
        assert_service_unavailable(customer_client.get(ORDERS))
        assert_service_unavailable(customer_client.get(ORDERS))
    assert customer_client.get(ORDERS).status_code == 200


# --- plain Django views and middleware ----------------------------------------------------------


@pytest.mark.urls(__name__)
def test_a_plain_django_view_answers_503_through_the_middleware(caplog):
    # The default test client re-raises any exception Django treats as a 500; getting a response
    # at all shows the middleware answered it.
    assert_service_unavailable(Client().get("/plain-view/"))
    assert no_traceback_logged(caplog)


@pytest.mark.urls(__name__)
def test_an_outage_in_a_middleware_is_a_503_too(settings):
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, f"{__name__}.SessionSaveFailsMiddleware"]
    response = Client(raise_request_exception=False).get("/api/v1/")
    assert_service_unavailable(response)
