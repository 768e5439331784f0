"""After a commit, nothing can turn success into an error (README, "Failure behaviour").

A load test with Redis stopped once got a 500 for a checkout whose order had committed: the
after-commit email and cache calls raised, the 500 released the Idempotency-Key, and the retry
got `cart_empty`. Here those after-commit steps fail on purpose, with real commits."""

from __future__ import annotations

import pytest

from common import outbox
from common.models import OutboxMessage
from inventory import cache as catalog_cache
from orders.models import Cart, Order
from orders.services import cart_item_add
from orders.tests.conftest import ADDRESS

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def after_commit_steps_fail(monkeypatch):
    """The broker and the cache both refuse, right after the order commits."""

    def broker_down(**kwargs):
        raise ConnectionRefusedError("Error 111 connecting to 127.0.0.1:6379")

    def cache_down():
        raise ConnectionRefusedError("Error 111 connecting to 127.0.0.1:6379")

    monkeypatch.setattr(outbox, "_publish", broker_down)
    monkeypatch.setattr(catalog_cache, "_bump", cache_down)


def test_a_committed_checkout_answers_201_and_its_retry_replays_it(
    customer, customer_client, product, after_commit_steps_fail, run_outbox
):
    cart_item_add(user=customer, product_id=product.pk, quantity=2)
    headers = {"HTTP_IDEMPOTENCY_KEY": "checkout-1"}

    first = customer_client.post("/api/v1/orders/", {"shipping_address": ADDRESS}, **headers)
    retry = customer_client.post("/api/v1/orders/", {"shipping_address": ADDRESS}, **headers)

    assert first.status_code == 201
    assert retry.status_code == 201
    assert retry["Idempotent-Replayed"] == "true"
    assert retry.json() == first.json()
    assert Order.objects.count() == 1
    assert not Cart.objects.get(user=customer).items.exists()
    # The confirmation email was not lost: it waits in the outbox for the broker.
    waiting = OutboxMessage.objects.get(task="common.tasks.send_email_task")
    assert (waiting.done_at, waiting.relayed_at) == (None, None)
    assert waiting.kwargs["template"] == "order_confirmation"


def test_what_waited_is_sent_once_the_broker_is_back(
    customer, customer_client, product, after_commit_steps_fail, monkeypatch, run_outbox
):
    from django.core import mail

    cart_item_add(user=customer, product_id=product.pk, quantity=1)
    assert customer_client.post("/api/v1/orders/", {"shipping_address": ADDRESS}).status_code == 201
    assert mail.outbox == []
    monkeypatch.undo()  # Redis is back

    assert outbox.relay_outbox() == 1
    assert outbox.relay_outbox() == 0
    assert [message.to for message in mail.outbox] == [["customer@example.com"]]
    assert OutboxMessage.objects.get().done_at is not None
