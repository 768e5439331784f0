"""Fixtures shared by every app's tests."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.core.cache import caches
from rest_framework.test import APIClient

from accounts.models import User


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("REDIS_URL"):
        return
    skip = pytest.mark.skip(reason="needs a real Redis: set REDIS_URL (CI always does)")
    for item in items:
        if "redis" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _clear_cache() -> Iterator[None]:
    """Throttle counters, cached reads and a broker backoff never leak from one test into the
    next."""
    from common import outbox

    outbox._broker_backoff["until"] = 0.0
    for cache in (caches["default"], caches["throttles"]):
        cache.clear()
    _forget_rate_limited_logs()
    yield
    for cache in (caches["default"], caches["throttles"]):
        cache.clear()


def _forget_rate_limited_logs() -> None:
    """Each test sees the first of its once-a-minute warnings (common.logging), whatever the
    tests before it logged."""
    import logging

    from common.logging import OncePerMinuteFilter

    for logger in logging.Logger.manager.loggerDict.values():
        for log_filter in getattr(logger, "filters", ()):
            if isinstance(log_filter, OncePerMinuteFilter):
                log_filter._last.clear()


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture
def make_user(db: None) -> Callable[..., User]:
    counter = iter(range(1, 1_000_000))

    def make(role: str = User.Role.CUSTOMER, *, verified: bool = True, **fields: Any) -> User:
        from django.utils import timezone

        fields.setdefault("email", f"user{next(counter)}@example.com")
        fields.setdefault("password", "correct-horse-battery-staple")
        if verified:
            fields.setdefault("email_verified_at", timezone.now())
        from accounts.roles import sync_role_groups

        user = User.objects.create_user(role=role, **fields)
        sync_role_groups(user)  # staff are in the Staff group, as the services make them
        return user

    return make


@pytest.fixture
def customer(make_user: Callable[..., User]) -> User:
    return make_user(User.Role.CUSTOMER, email="customer@example.com")


@pytest.fixture
def staff(make_user: Callable[..., User]) -> User:
    return make_user(User.Role.STAFF, email="staff@example.com")


@pytest.fixture
def admin_user(make_user: Callable[..., User]) -> User:
    return make_user(User.Role.ADMIN, email="admin@example.com")


def client_for(user: User) -> APIClient:
    """A client with an access token as the API mints it (accounts.tokens: the `role` claim,
    the session generation), so tests see what real clients get."""
    from accounts.tokens import token_pair_for

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_pair_for(user).access}")
    return client


@pytest.fixture
def customer_client(customer: User) -> APIClient:
    return client_for(customer)


@pytest.fixture
def staff_client(staff: User) -> APIClient:
    return client_for(staff)


@pytest.fixture
def admin_client_api(admin_user: User) -> APIClient:
    return client_for(admin_user)


@pytest.fixture(autouse=True)
def _ledger_adds_up(request: pytest.FixtureRequest) -> Iterator[None]:
    """After every test that used the database, in every app: the stock ledger sums to the levels
    (`manage.py audit_stock`), every order's status agrees with its money (`manage.py
    audit_payments`), and no task queued through the outbox failed unless the test says so.
    The suite proves these invariants after each test."""
    marker = request.node.get_closest_marker("django_db")
    transactional = "transactional_db" in request.fixturenames or bool(
        marker and marker.kwargs.get("transaction")
    )
    if not (marker or transactional or "db" in request.fixturenames):
        yield
        return
    request.getfixturevalue("transactional_db" if transactional else "db")
    yield
    if "allow_stock_drift" not in request.fixturenames:
        from inventory.selectors import stock_audit

        assert stock_audit() == []
    if "allow_payment_mismatch" not in request.fixturenames:
        from orders.selectors import payment_audit

        assert payment_audit() == []
    if "allow_outbox_failures" not in request.fixturenames:
        from common.models import OutboxMessage

        failed = OutboxMessage.objects.filter(done_at__isnull=True).exclude(last_error="")
        assert list(failed.values_list("task", "last_error")) == []


@pytest.fixture
def allow_stock_drift() -> None:
    """For tests that break the ledger on purpose (audit_stock's own tests)."""


@pytest.fixture
def allow_payment_mismatch() -> None:
    """For tests that break the order/payment invariant on purpose (audit_payments' own tests)."""


@pytest.fixture
def allow_outbox_failures() -> None:
    """For tests where a queued task fails on purpose (SMTP down, a handler that raises once)."""


@pytest.fixture
def run_outbox(db: None) -> Callable[[], int]:
    """Make every waiting outbox message due now and relay it, as beat's relay would once the
    backoff has passed (eager Celery runs each task right there). Returns how many ran."""
    from django.utils import timezone

    from common.models import OutboxMessage
    from common.outbox import relay_outbox

    def run() -> int:
        OutboxMessage.objects.filter(done_at__isnull=True, failed_at__isnull=True).update(
            available_at=timezone.now(), relayed_at=None, lease_until=None
        )
        return int(relay_outbox())

    return run


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup: None, django_db_blocker: Any) -> Iterator[None]:
    """pytest-django's test database, and before it is dropped: no other session left on it.

    The live-server, gunicorn and Celery tests start processes that connect to it; one killed on
    purpose can leave its backend behind a moment, and DROP DATABASE would then fail."""
    yield
    from django.db import connection

    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


@pytest.fixture
def throttle_rates(settings: Any) -> Callable[..., None]:
    """Set some `DEFAULT_THROTTLE_RATES` scopes for one test: `throttle_rates(login="2/hour")`."""

    def set_rates(**rates: str) -> None:
        framework = settings.REST_FRAMEWORK
        settings.REST_FRAMEWORK = {
            **framework,
            "DEFAULT_THROTTLE_RATES": {**framework["DEFAULT_THROTTLE_RATES"], **rates},
        }

    return set_rates
