from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from inventory.models import Product, StockLevel, StockMovement
from inventory.services import StockLine, stock_reserve
from orders import models as order_models
from orders.models import CartItem, Order, OrderEvent, OrderItem
from orders.services import cart_item_add, order_place
from orders.tests.conftest import ADDRESS

pytestmark = pytest.mark.django_db

ORDERS = "/api/v1/orders/"
BODY = {"shipping_address": ADDRESS, "note": "Leave at the door"}


def levels(*products):
    return [
        tuple(StockLevel.objects.filter(product=p).values_list("on_hand", "reserved").get())
        for p in products
    ]


def test_checkout_places_an_order(
    customer_client, customer, product, make_product, django_capture_on_commit_callbacks, settings
):
    settings.ORDER_PAYMENT_TIMEOUT_MINUTES = 45
    cheap = make_product(sku="CB-1", name="Cable", price_cents=250, on_hand=5)
    cart_item_add(user=customer, product_id=product.pk, quantity=2)
    cart_item_add(user=customer, product_id=cheap.pk, quantity=3)
    before = timezone.now()
    with django_capture_on_commit_callbacks(execute=True):
        response = customer_client.post(ORDERS, BODY, format="json")
    assert response.status_code == 201
    body = response.json()
    order = Order.objects.get()
    assert body["id"] == str(order.pk)
    assert re.fullmatch(r"SO-[23456789ABCDEFGHJKMNPQRSTWXYZ]{6}", body["number"])
    assert body["status"] == "pending"
    assert body["items"] == [
        {
            "product": product.pk,
            "sku": "HP-100",
            "name": "Studio Headphones",
            "unit_price_cents": 4999,
            "quantity": 2,
            "line_total_cents": 9998,
        },
        {
            "product": cheap.pk,
            "sku": "CB-1",
            "name": "Cable",
            "unit_price_cents": 250,
            "quantity": 3,
            "line_total_cents": 750,
        },
    ]
    assert (body["subtotal_cents"], body["total_cents"], body["currency"]) == (10748, 10748, "USD")
    assert body["shipping_address"] == {**ADDRESS, "line2": ""}
    assert body["note"] == "Leave at the door"
    assert body["payments"] == []
    assert body["customer"] == {"id": customer.pk, "email": customer.email}
    assert [(e["from_status"], e["to_status"], e["actor"]) for e in body["events"]] == [
        (None, "pending", customer.pk)
    ]
    expected_expiry = before + timedelta(minutes=45)
    assert order.expires_at is not None
    assert expected_expiry <= order.expires_at <= timezone.now() + timedelta(minutes=45)
    # Stock reserved, with a ledger row naming the order; the cart is empty.
    assert levels(product, cheap) == [(10, 2), (5, 3)]
    assert list(
        StockMovement.objects.filter(reason="reservation")
        .order_by("product_id")
        .values_list("product_id", "delta_reserved", "reference")
    ) == [(product.pk, 2, f"order:{order.number}"), (cheap.pk, 3, f"order:{order.number}")]
    assert CartItem.objects.count() == 0
    # The confirmation email, after commit.
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == [customer.email]
    assert message.subject == f"Order {order.number} received"
    assert "2 x Studio Headphones (HP-100): 99.98 USD" in message.body
    assert "Total: 107.48 USD" in message.body


def test_items_keep_the_price_and_name_of_the_moment(customer, product, place_order):
    order = place_order(customer, [(product, 1)])
    Product.objects.filter(pk=product.pk).update(price_cents=1, name="Renamed", sku="NEW-1")
    item = OrderItem.objects.get(order=order)
    assert (item.sku, item.name, item.unit_price_cents) == ("HP-100", "Studio Headphones", 4999)


def test_empty_cart_is_400(customer_client):
    response = customer_client.post(ORDERS, BODY, format="json")
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "cart_empty"
    assert Order.objects.count() == 0


def test_unverified_email_is_403_and_nothing_changes(make_user, product):
    from conftest import client_for

    user = make_user(verified=False)
    cart_item_add(user=user, product_id=product.pk, quantity=1)
    response = client_for(user).post(ORDERS, BODY, format="json")
    assert response.status_code == 403
    assert response.json()["errors"][0]["code"] == "email_not_verified"
    assert Order.objects.count() == 0
    assert CartItem.objects.count() == 1
    assert levels(product) == [(10, 0)]


def test_short_stock_names_every_short_product_and_reserves_nothing(
    customer_client, customer, make_product
):
    plenty = make_product(sku="OK-1", on_hand=10)
    short_a = make_product(sku="SHORT-A", on_hand=5)
    short_b = make_product(sku="SHORT-B", on_hand=5)
    for p, quantity in ((plenty, 1), (short_a, 4), (short_b, 5)):
        cart_item_add(user=customer, product_id=p.pk, quantity=quantity)
    # Other buyers took some units meanwhile.
    stock_reserve(
        lines=[
            StockLine(product_id=short_a.pk, quantity=2),
            StockLine(product_id=short_b.pk, quantity=1),
        ],
        actor=None,
        reference="order:OTHERS",
    )
    movements = StockMovement.objects.count()
    response = customer_client.post(ORDERS, BODY, format="json")
    assert response.status_code == 409
    assert response.json()["errors"] == [
        {
            "code": "insufficient_stock",
            "detail": "SHORT-A: 3 available, 4 requested.",
            "attr": "items",
        },
        {
            "code": "insufficient_stock",
            "detail": "SHORT-B: 4 available, 5 requested.",
            "attr": "items",
        },
    ]
    assert levels(plenty, short_a, short_b) == [(10, 0), (5, 2), (5, 1)]
    assert StockMovement.objects.count() == movements
    assert Order.objects.count() == OrderItem.objects.count() == OrderEvent.objects.count() == 0
    assert CartItem.objects.count() == 3


def test_a_product_deactivated_after_it_went_in_the_cart_is_400(customer_client, customer, product):
    cart_item_add(user=customer, product_id=product.pk, quantity=1)
    Product.objects.filter(pk=product.pk).update(is_active=False)
    response = customer_client.post(ORDERS, BODY, format="json")
    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"code": "product_unavailable", "detail": "HP-100 is no longer for sale.", "attr": "items"}
    ]
    assert Order.objects.count() == 0
    assert levels(product) == [(10, 0)]


@pytest.mark.parametrize(
    ("address", "attr"),
    [
        ({**ADDRESS, "country": "Germany"}, "shipping_address.country"),
        ({k: v for k, v in ADDRESS.items() if k != "city"}, "shipping_address.city"),
        ({**ADDRESS, "name": ""}, "shipping_address.name"),
    ],
)
def test_bad_address_is_400(customer_client, customer, product, address, attr):
    cart_item_add(user=customer, product_id=product.pk, quantity=1)
    response = customer_client.post(ORDERS, {"shipping_address": address}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"][0]["attr"] == attr
    assert Order.objects.count() == 0
    assert CartItem.objects.count() == 1


def test_country_is_normalised(customer, product):
    cart_item_add(user=customer, product_id=product.pk, quantity=1)
    from orders.api.serializers import OrderPlaceInputSerializer

    data = OrderPlaceInputSerializer(data={"shipping_address": {**ADDRESS, "country": "de"}})
    assert data.is_valid()
    assert data.validated_data["shipping_address"]["country"] == "DE"


def test_same_idempotency_key_replays_the_order(customer_client, customer, product):
    cart_item_add(user=customer, product_id=product.pk, quantity=2)
    headers = {"Idempotency-Key": "checkout-1"}
    first = customer_client.post(ORDERS, BODY, format="json", headers=headers)
    second = customer_client.post(ORDERS, BODY, format="json", headers=headers)
    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second.headers["Idempotent-Replayed"] == "true"
    assert Order.objects.count() == 1
    assert levels(product) == [(10, 2)]
    other = customer_client.post(
        ORDERS, {**BODY, "note": "changed"}, format="json", headers=headers
    )
    assert other.status_code == 422
    assert other.json()["errors"][0]["code"] == "idempotency_key_reused"
    assert Order.objects.count() == 1


def test_a_failed_checkout_does_not_burn_its_idempotency_key(customer_client, customer, product):
    headers = {"Idempotency-Key": "checkout-2"}
    assert customer_client.post(ORDERS, BODY, format="json", headers=headers).status_code == 400
    cart_item_add(user=customer, product_id=product.pk, quantity=1)
    assert customer_client.post(ORDERS, BODY, format="json", headers=headers).status_code == 201
    assert Order.objects.count() == 1


def test_an_order_number_collision_is_retried(customer, product, make_product, monkeypatch):
    cart_item_add(user=customer, product_id=product.pk, quantity=1)
    first = order_place(user=customer, shipping_address=ADDRESS)
    numbers = iter([first.number, first.number, "SO-FRESH2"])
    monkeypatch.setattr(order_models, "order_number_generate", lambda: next(numbers))
    cart_item_add(user=customer, product_id=make_product().pk, quantity=1)
    second = order_place(user=customer, shipping_address=ADDRESS)
    assert second.number == "SO-FRESH2"
    assert Order.objects.count() == 2


def test_order_numbers_avoid_ambiguous_characters():
    numbers = {order_models.order_number_generate() for _ in range(500)}
    assert len(numbers) == 500
    assert all(re.fullmatch(r"SO-[2-9A-HJKMNP-TW-Z]{6}", number) for number in numbers)
    assert not set("".join(number[3:] for number in numbers)) & set("01ILOUV")


def test_checkout_gives_up_when_no_number_is_free(customer, product, monkeypatch):
    cart_item_add(user=customer, product_id=product.pk, quantity=1)
    taken = order_place(user=customer, shipping_address=ADDRESS).number
    monkeypatch.setattr(order_models, "order_number_generate", lambda: taken)
    cart_item_add(user=customer, product_id=product.pk, quantity=1)
    with pytest.raises(RuntimeError, match="No free order number"):
        order_place(user=customer, shipping_address=ADDRESS)
    assert Order.objects.count() == 1
    assert CartItem.objects.count() == 1
    assert StockLevel.objects.get(product=product).reserved == 1


def test_checkout_documents_its_idempotency_key_and_errors(api_client):
    schema = api_client.get("/api/schema/", {"format": "json"}).json()
    operation = schema["paths"]["/api/v1/orders/"]["post"]
    assert {"name": "Idempotency-Key", "in": "header"}.items() <= operation["parameters"][0].items()
    assert {"201", "400", "403", "409", "422"} <= set(operation["responses"])
    assert "`idempotency_key_in_use`" in operation["responses"]["409"]["description"]
    assert "`insufficient_stock`" in operation["responses"]["409"]["description"]


def test_the_201_is_the_orders_detail(customer_client, customer, product, make_product):
    """The 201 is built from what the checkout holds, without reading the order back: it must
    say exactly what the detail says."""
    cart_item_add(user=customer, product_id=make_product(on_hand=3).pk, quantity=3)
    cart_item_add(user=customer, product_id=product.pk, quantity=1)
    created = customer_client.post(ORDERS, BODY, format="json")
    assert created.status_code == 201
    detail = customer_client.get(f"{ORDERS}{created.json()['id']}/")
    assert created.json() == detail.json()


@pytest.mark.parametrize("products", [1, 3])
def test_checkout_runs_a_fixed_number_of_queries(
    customer_client, customer, make_product, django_assert_num_queries, products
):
    for _ in range(products):
        cart_item_add(user=customer, product_id=make_product().pk, quantity=1)
    # The user (JWT); the checkout's savepoint (only because the test runs in a transaction; a
    # request has none), the cart's lock, its lines read and deleted in one statement, the
    # order, its items and its event in one statement, the email's outbox row, one conditional
    # UPDATE per product, the ledger rows in one INSERT, and the savepoint's release.
    with django_assert_num_queries(9 + products):
        assert customer_client.post(ORDERS, BODY, format="json").status_code == 201


@pytest.mark.django_db(transaction=True)
def test_a_checkout_takes_no_savepoint(customer, product, make_product):
    """Outside any transaction (as in a request), the checkout is one BEGIN ... COMMIT: no
    savepoint, not even while an order number collides."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    cart_item_add(user=customer, product_id=product.pk, quantity=1)
    taken = order_place(user=customer, shipping_address=ADDRESS).number
    cart_item_add(user=customer, product_id=make_product().pk, quantity=1)
    numbers = iter([taken, "SO-FRESH3"])
    original = order_models.order_number_generate
    order_models.order_number_generate = lambda: next(numbers)
    try:
        with CaptureQueriesContext(connection) as captured:
            order = order_place(user=customer, shipping_address=ADDRESS)
    finally:
        order_models.order_number_generate = original
    assert order.number == "SO-FRESH3"
    statements = [query["sql"] for query in captured.captured_queries]
    assert not [sql for sql in statements if "SAVEPOINT" in sql]
    checkout = statements[: statements.index("COMMIT") + 1]  # then the outbox relays the email
    assert checkout[0] == "BEGIN"
    assert sum(sql.startswith('INSERT INTO "orders_order" ') for sql in checkout) == 2


_VALID_BODIES = [
    BODY,
    {"shipping_address": ADDRESS},
    {"shipping_address": {**ADDRESS, "country": " de ", "line2": "  Flat 2 "}, "note": " hi "},
    {"shipping_address": {**ADDRESS, "line2": "", "extra": "ignored"}, "note": "", "more": 1},
    {"shipping_address": {**ADDRESS, "name": "Jürgen Müßig", "city": "Zürich"}},
    {"shipping_address": {**ADDRESS, "name": "x" * 200, "postal_code": "1" * 20}},
    {"shipping_address": ADDRESS, "note": "n" * 1000},
]
_DOUBTFUL_BODIES = [
    [],
    "text",
    {},
    {"shipping_address": None},
    {"shipping_address": "Berlin"},
    {"shipping_address": [ADDRESS]},
    {"shipping_address": {**ADDRESS, "name": ""}},
    {"shipping_address": {**ADDRESS, "name": "   "}},
    {"shipping_address": {**ADDRESS, "name": None}},
    {"shipping_address": {**ADDRESS, "name": 7}},
    {"shipping_address": {**ADDRESS, "name": True}},
    {"shipping_address": {**ADDRESS, "name": "x" * 201}},
    {"shipping_address": {**ADDRESS, "postal_code": 10115}},
    {"shipping_address": {**ADDRESS, "postal_code": "1" * 21}},
    {"shipping_address": {**ADDRESS, "city": "Ber\x00lin"}},
    {"shipping_address": {**ADDRESS, "city": "Ber\ud800lin"}},
    {"shipping_address": {**ADDRESS, "line2": None}},
    {"shipping_address": {**ADDRESS, "line2": "x" * 201}},
    {"shipping_address": {**ADDRESS, "country": "DEU"}},
    {"shipping_address": {**ADDRESS, "country": "D1"}},
    {"shipping_address": {**ADDRESS, "country": "DE\n"}},
    {"shipping_address": {**ADDRESS, "country": "ÄÖ"}},
    {"shipping_address": {**ADDRESS, "country": None}},
    {"shipping_address": {key: value for key, value in ADDRESS.items() if key != "country"}},
    {"shipping_address": {key: value for key, value in ADDRESS.items() if key != "line1"}},
    {"shipping_address": ADDRESS, "note": None},
    {"shipping_address": ADDRESS, "note": 5},
    {"shipping_address": ADDRESS, "note": "n" * 1001},
    {"shipping_address": ADDRESS, "note": "\x00"},
]


@pytest.mark.parametrize("body", _VALID_BODIES + _DOUBTFUL_BODIES)
def test_the_lean_checkout_validation_agrees_with_the_serializer(body):
    """The checkout checks its body without the serializer when it certainly passes; whenever
    the lean check is in doubt it answers None and the serializer decides (and words the 400)."""
    from orders.api.serializers import OrderPlaceInputSerializer, order_place_input

    lean = order_place_input(body)
    serializer = OrderPlaceInputSerializer(data=body)
    valid = serializer.is_valid()
    if body in _VALID_BODIES:
        assert lean is not None
    if lean is not None:
        assert valid
        assert lean == serializer.validated_data
        assert list(lean["shipping_address"]) == list(serializer.validated_data["shipping_address"])


@pytest.mark.parametrize(
    "body", [body for body in _DOUBTFUL_BODIES[3:] if "\\ud800" not in ascii(body)]
)  # (the test client cannot send a lone surrogate)
def test_a_bad_checkout_body_gets_the_serializers_400(customer_client, customer, product, body):
    from orders.api.serializers import OrderPlaceInputSerializer

    cart_item_add(user=customer, product_id=product.pk, quantity=1)
    serializer = OrderPlaceInputSerializer(data=body)
    response = customer_client.post(ORDERS, body, format="json")
    if serializer.is_valid():  # e.g. a number as postal code: accepted by the serializer
        assert response.status_code == 201
        assert response.json()["shipping_address"] == serializer.validated_data["shipping_address"]
    else:
        assert response.status_code == 400
        assert response.json()["errors"]
        assert CartItem.objects.filter(cart__user=customer).count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_checkout_with_an_idempotency_key_takes_no_savepoint(
    customer_client, customer, product, monkeypatch
):
    """Under `Idempotency-Key` the checkout runs in the key's transaction (the order and its
    stored response commit together) without a savepoint of its own, and after that commit
    nothing but the publish runs (no relay transaction)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from common import outbox

    published = []
    monkeypatch.setattr(outbox, "_publish", lambda **kwargs: published.append(kwargs))
    cart_item_add(user=customer, product_id=product.pk, quantity=1)
    headers = {"Idempotency-Key": "checkout-no-savepoint"}
    with CaptureQueriesContext(connection) as captured:
        created = customer_client.post(ORDERS, BODY, format="json", headers=headers)
    assert created.status_code == 201
    statements = [query["sql"] for query in captured.captured_queries]
    assert not [sql for sql in statements if "SAVEPOINT" in sql]
    # The user; the key's claim (its own short transaction); the checkout with the stored
    # response, in one transaction that is the last thing to touch the database.
    assert statements.count("BEGIN") == statements.count("COMMIT") == 2
    checkout = statements[len(statements) - 1 - statements[::-1].index("BEGIN") :]
    assert checkout[-1] == "COMMIT"
    assert sum('INSERT INTO "orders_order" ' in sql for sql in checkout) == 1
    assert sum(sql.startswith('UPDATE "common_idempotencykey"') for sql in checkout) == 1
    assert len(statements) == 4 + 10
    assert len(published) == 1
    replay = customer_client.post(ORDERS, BODY, format="json", headers=headers)
    assert replay.json() == created.json()
    assert Order.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_failed_idempotent_checkout_rolls_back_whole_and_frees_its_key(
    customer_client, customer, product, make_product
):
    """Without its savepoint, a checkout refused half-way (the second product is short) still
    leaves nothing behind: no order, the cart and the stock as they were, the key free."""
    short = make_product(on_hand=1)
    cart_item_add(user=customer, product_id=product.pk, quantity=1)
    cart_item_add(user=customer, product_id=short.pk, quantity=1)
    StockLevel.objects.filter(product=short).update(reserved=1)
    headers = {"Idempotency-Key": "checkout-short"}
    refused = customer_client.post(ORDERS, BODY, format="json", headers=headers)
    assert refused.status_code == 409
    assert Order.objects.count() == 0
    assert CartItem.objects.filter(cart__user=customer).count() == 2
    assert levels(product) == [(10, 0)]
    StockLevel.objects.filter(product=short).update(reserved=0)
    assert customer_client.post(ORDERS, BODY, format="json", headers=headers).status_code == 201
    assert levels(product, short) == [(10, 1), (1, 1)]
