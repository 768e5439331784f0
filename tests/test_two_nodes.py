"""Two nodes behind a load balancer: two gunicorn servers (tests/conftest.py, `two_nodes`) on
different ports over the same PostgreSQL and Redis. Whatever a client is promised must hold
whichever node answers it:

- a throttle counts the deployment's requests, not one node's (README, `THROTTLE_*`);
- a catalog write on one node is seen on the other at once, cached reads included;
- an `Idempotency-Key` replays on the other node, and is refused there for another body;
- concurrent checkouts split across both never sell more than the stock.

Each test starts with the shared Redis emptied, and ends with no traceback in either node's log
and `audit_stock` and `audit_payments` clean (the suite's autouse check).
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from accounts.models import User
from accounts.tokens import token_pair_for
from inventory.models import Category, Product, StockLevel, StockMovement
from inventory.selectors import stock_audit
from inventory.services import category_create, product_create
from orders.models import Cart, Order
from orders.services import cart_item_add
from orders.tests.conftest import ADDRESS
from payments.gateways.base import CardDetails
from payments.models import Payment
from payments.services import payment_method_create
from tests.conftest import TWO_NODES_ANON_RATE, TWO_NODES_USER_RATE, Node, TwoNodes

# Rows the nodes must see are committed: a test that makes any is transactional.
COMMITTED = pytest.mark.django_db(transaction=True)
pytestmark = pytest.mark.redis

Reply = tuple[int, dict[str, str], Any]


@pytest.fixture
def nodes(two_nodes: TwoNodes) -> Iterator[TwoNodes]:
    """The session's two nodes, with nothing left in their Redis by an earlier test; after the
    test, neither logged a traceback (a 500 is always a bug)."""
    two_nodes.forget_shared_state()
    logged = {node.name: node.process.log.stat().st_size for node in two_nodes.nodes}
    yield two_nodes
    for node in two_nodes.nodes:
        with node.process.log.open("rb") as log:
            log.seek(logged[node.name])
            assert b"Traceback" not in log.read(), node.process.tail()


@pytest.fixture
def category(db: None) -> Category:
    return category_create(name="Nodes")


@pytest.fixture
def token_for(request: pytest.FixtureRequest) -> Callable[..., str]:
    """An access token for a new user of the given role (its rows committed: the nodes see it)."""

    def token(role: str = User.Role.CUSTOMER, **fields: Any) -> str:
        make_user: Callable[..., User] = request.getfixturevalue("make_user")
        return token_pair_for(make_user(role, **fields)).access

    return token


def call(node: Node, method: str, path: str, data: Any = None, **kwargs: Any) -> Reply:
    """A request to one node: (status, headers with lower-case names, parsed JSON body)."""
    body = None if data is None else json.dumps(data).encode()
    status, headers, raw = node.request(method, path, body=body, **kwargs)
    return status, {k.lower(): v for k, v in headers.items()}, json.loads(raw) if raw else None


def error_code(body: Any) -> str:
    return str(body["errors"][0]["code"])


def out_of_window_edge(seconds: int, margin: float = 15) -> None:
    """A counter kept per fixed window of `seconds` (aligned to the epoch) starts again at the
    window's end: a burst straddling it would be counted in two windows. Start after the edge
    when it is near (with hourly windows: rarely)."""
    left = seconds - time.time() % seconds
    if left < margin:
        time.sleep(left + 1)


# --- (a) throttles count the deployment's requests ----------------------------------------------

THROTTLED_ENDPOINTS = [  # the anonymous cases need no rows (nor the cost of a flush after)
    pytest.param("anon", "/api/v1/products/", id="anon-catalog-read"),
    pytest.param("anon", "/api/v1/", id="anon-api-root"),
    pytest.param("user", "/api/v1/products/", id="user-catalog-read", marks=COMMITTED),
    pytest.param("user", "/api/v1/cart/", id="user-cart", marks=COMMITTED),
]
RATES = {"anon": TWO_NODES_ANON_RATE, "user": TWO_NODES_USER_RATE}


@pytest.mark.parametrize(("caller", "path"), THROTTLED_ENDPOINTS)
def test_the_rate_holds_for_both_nodes_together(
    nodes: TwoNodes, token_for: Callable[..., str], caller: str, path: str
) -> None:
    """Requests alternating between the nodes get exactly the rate in total, then 429 with
    `Retry-After` from both."""
    number, seconds = RATES[caller]
    token = token_for() if caller == "user" else None
    out_of_window_edge(seconds)

    allowed = [call(nodes.nodes[i % 2], "GET", path, token=token)[0] for i in range(number)]
    assert allowed == [200] * number
    for node in nodes.nodes:
        status, headers, body = call(node, "GET", path, token=token)
        assert (node.name, status) == (node.name, 429), body
        assert error_code(body) == "throttled"
        assert 0 < int(headers["retry-after"]) <= seconds, headers


@pytest.mark.parametrize(("caller", "path"), THROTTLED_ENDPOINTS)
def test_a_concurrent_burst_on_both_nodes_is_held_to_the_rate(
    nodes: TwoNodes, token_for: Callable[..., str], caller: str, path: str
) -> None:
    """Twice the rate, sent by four clients at once, alternating between the nodes (each node
    runs two workers): exactly the rate gets through. A counter read and written back in two
    steps lets racing requests through; only an atomic count across the deployment holds."""
    number, seconds = RATES[caller]
    token = token_for() if caller == "user" else None
    out_of_window_edge(seconds)

    with ThreadPoolExecutor(max_workers=4) as pool:
        statuses = Counter(
            pool.map(
                lambda i: call(nodes.nodes[i % 2], "GET", path, token=token)[0], range(2 * number)
            )
        )
    assert statuses == {200: number, 429: number}


# --- (b) a catalog write on one node invalidates the other's cache ------------------------------


@COMMITTED
def test_a_catalog_write_on_one_node_is_read_on_the_other_at_once(
    nodes: TwoNodes, token_for: Callable[..., str], category: Category
) -> None:
    product = product_create(
        sku="NODE-1", name="Node lamp", category=category, price_cents=1000, on_hand=5
    )
    reader, staff = token_for(), token_for(User.Role.STAFF)
    detail, listing = f"/api/v1/products/{product.pk}/", f"/api/v1/products/?category={category.pk}"

    def on_b() -> tuple[dict[str, Any], list[dict[str, Any]], str]:
        status, headers, item = call(nodes.b, "GET", detail, token=reader)
        assert status == 200
        status, _, page = call(nodes.b, "GET", listing, token=reader)
        assert status == 200
        return item, page["results"], headers["etag"]

    item, results, first_etag = on_b()
    assert (item["price_cents"], item["available"]) == (1000, 5)
    assert [row["price_cents"] for row in results] == [1000]

    # B now answers from the shared cache: a change behind the application's back (no catalog
    # write, so no new version) is not seen. The cache is on; what follows is invalidation.
    Product.objects.filter(pk=product.pk).update(price_cents=1111)
    item, results, etag = on_b()
    assert (item["price_cents"], [row["price_cents"] for row in results]) == (1000, [1000])
    assert etag == first_etag

    # Staff change the price on A: B's very next reads have it, the list too.
    status, _, changed = call(nodes.a, "PATCH", detail, {"price_cents": 2000}, token=staff)
    assert (status, changed["price_cents"]) == (200, 2000)
    item, results, etag = on_b()
    assert (item["price_cents"], [row["price_cents"] for row in results]) == (2000, [2000])
    assert etag != first_etag

    # A stock change on A is a catalog write too (`available`).
    adjust = {"delta": 3, "reason": "receipt"}
    status, _, _ = call(nodes.a, "POST", f"{detail}stock/adjust/", adjust, token=staff)
    assert status == 201
    item, results, _ = on_b()
    assert (item["available"], [row["available"] for row in results]) == (8, [8])


# --- (c) an Idempotency-Key is the deployment's, not a node's -----------------------------------


@COMMITTED
def test_an_idempotency_key_replays_on_the_other_node(
    nodes: TwoNodes, make_user: Callable[..., User], category: Category
) -> None:
    customer = make_user(email="ida@example.com")
    token = token_pair_for(customer).access
    product = product_create(
        sku="NODE-2", name="Node desk", category=category, price_cents=5000, on_hand=3
    )
    cart_item_add(user=customer, product_id=product.pk, quantity=2)
    checkout = {"shipping_address": ADDRESS, "note": "leave at the door"}
    key = {"Idempotency-Key": "two-nodes-checkout"}

    status, headers, first = call(
        nodes.a, "POST", "/api/v1/orders/", checkout, token=token, headers=key
    )
    assert status == 201, first
    assert "idempotent-replayed" not in headers
    status, headers, replay = call(
        nodes.b, "POST", "/api/v1/orders/", checkout, token=token, headers=key
    )
    assert (status, headers.get("idempotent-replayed")) == (201, "true")
    assert replay == first
    assert Order.objects.filter(user=customer).count() == 1
    assert StockLevel.objects.get(product=product).reserved == 2

    # The same key with another body, on either node: refused, nothing done.
    other = {**checkout, "note": "ring twice"}
    for node in nodes.nodes:
        status, _, body = call(node, "POST", "/api/v1/orders/", other, token=token, headers=key)
        assert (node.name, status) == (node.name, 422), body
        assert error_code(body) == "idempotency_key_reused"
    assert Order.objects.filter(user=customer).count() == 1

    # Pay on B, the retry lands on A: one charge, the same answer.
    card = CardDetails(number="4242424242424242", exp_month=12, exp_year=2040, cvc="123")
    method = payment_method_create(user=customer, card=card)
    pay_path, pay = f"/api/v1/orders/{first['id']}/pay/", {"payment_method": str(method.pk)}
    pay_key = {"Idempotency-Key": "two-nodes-pay"}
    status, _, paid = call(nodes.b, "POST", pay_path, pay, token=token, headers=pay_key)
    assert (status, paid["status"]) == (200, "paid"), paid
    status, headers, replay = call(nodes.a, "POST", pay_path, pay, token=token, headers=pay_key)
    assert (status, headers.get("idempotent-replayed"), replay) == (200, "true", paid)
    assert Payment.objects.filter(order_id=first["id"], kind="charge").count() == 1


# --- (d) concurrent checkouts on both nodes never oversell --------------------------------------


@COMMITTED
def test_concurrent_checkouts_on_both_nodes_never_oversell(
    nodes: TwoNodes, make_user: Callable[..., User], category: Category
) -> None:
    """Stock N, 2N + 2 customers each with one unit in the cart, all checking out at once, half
    on each node: exactly N orders, every other customer a 409 `insufficient_stock` with the
    cart intact, the stock fully reserved and never below zero, the ledger adding up."""
    stock, buyers = 5, 12
    product = product_create(
        sku="NODE-3", name="Node chair", category=category, price_cents=2500, on_hand=stock
    )
    customers = [make_user(email=f"buyer{n}@example.com") for n in range(buyers)]
    tokens = [token_pair_for(customer).access for customer in customers]
    for customer in customers:
        cart_item_add(user=customer, product_id=product.pk, quantity=1)
    start = threading.Barrier(buyers)

    def checkout(n: int) -> Reply:
        start.wait(timeout=30)
        node = nodes.nodes[n % 2]
        return call(
            node,
            "POST",
            "/api/v1/orders/",
            {"shipping_address": ADDRESS},
            token=tokens[n],
            timeout=60,
        )

    with ThreadPoolExecutor(max_workers=buyers) as pool:
        replies = list(pool.map(checkout, range(buyers)))

    outcomes = Counter(
        (status, "order" if status == 201 else error_code(body)) for status, _, body in replies
    )
    assert outcomes == {(201, "order"): stock, (409, "insufficient_stock"): buyers - stock}
    winners = {n for n, (status, _, _) in enumerate(replies) if status == 201}
    assert Order.objects.count() == stock
    assert set(Order.objects.values_list("user_id", flat=True)) == {
        customers[n].pk for n in winners
    }
    level = StockLevel.objects.get(product=product)
    assert (level.on_hand, level.reserved) == (stock, stock)
    reservations = StockMovement.objects.filter(
        product=product, reason=StockMovement.Reason.RESERVATION
    )
    assert sorted(reservations.values_list("delta_reserved", flat=True)) == [1] * stock
    assert stock_audit() == []
    # The losers' carts are as they were; the winners' were emptied.
    for n, customer in enumerate(customers):
        lines = list(Cart.objects.get(user=customer).items.values_list("quantity", flat=True))
        assert lines == ([] if n in winners else [1]), n
