import uuid

import pytest

from payments import events


def test_unknown_event_names_are_refused():
    with pytest.raises(ValueError, match="Unknown payment event"):
        events.subscribe("payment.lost", lambda **kw: None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="Unknown payment event"):
        events.publish("payment.lost", payment_id=uuid.uuid4(), order_id=uuid.uuid4())  # type: ignore[arg-type]


@pytest.mark.django_db
def test_published_after_commit_once_per_subscription(django_capture_on_commit_callbacks):
    seen = []

    def handler(*, payment_id, order_id):
        seen.append((payment_id, order_id))

    events.subscribe("payment.succeeded", handler)
    events.subscribe("payment.succeeded", handler)  # a second ready() does not double it
    payment_id, order_id = uuid.uuid4(), uuid.uuid4()
    try:
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            events.publish("payment.succeeded", payment_id=payment_id, order_id=order_id)
            assert seen == []  # nothing before the commit
        assert len(callbacks) == 1
        assert seen == [(payment_id, order_id)]
        events.publish("payment.failed", payment_id=payment_id, order_id=order_id)
    finally:
        events.unsubscribe("payment.succeeded", handler)
    assert seen == [(payment_id, order_id)]


def test_the_stripe_library_logs_only_warnings(settings):
    # It logs every API call at INFO and request bodies (card numbers) at DEBUG.
    assert settings.LOGGING["loggers"]["stripe"] == {"level": "WARNING"}
