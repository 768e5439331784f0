"""Schemathesis against the OpenAPI schema the app serves at /api/schema/, every operation, as an
anonymous caller, a customer and a staff member.

The schema is fetched from the app in-process (WSGI, no server) and every generated request goes
through the whole Django stack the same way. Each request must:

- never answer 5xx (`not_a_server_error`);
- answer a documented status, with the documented content type, headers and body
  (`status_code_conformance`, `content_type_conformance`, `response_headers_conformance`,
  `response_schema_conformance`): every error body in the one shape, with a code the operation
  lists (common/openapi.py);
- refuse what the schema forbids (`negative_data_rejection`, `missing_required_header`,
  `ignored_auth`: a required token really is required) and accept what it allows
  (`positive_data_acceptance`, except where the schema cannot tell: see
  `positive_data_acceptance_but_domain_errors`);
- leave the stock ledger and the order/payment invariants intact (`manage.py audit_stock`,
  `audit_payments`), checked after every request.

Anonymous requests also fuzz the `Authorization` header (missing, malformed, forged); a
customer's and a staff member's always carry their own valid token.

Real ids. Generated ids mostly miss (404), so three path parameters in four are replaced by the
ids of a small world seeded once for the module (categories, products with an image, a customer
and a staff member each with a saved card, a cart line, a pending and a paid order); the rest
stay as generated, so unknown and malformed ids are fuzzed too. Each request runs in a savepoint
that is rolled back after its checks: every example starts from the same world (Hypothesis
expects examples to be independent, and a failure replays exactly), whatever the one before it
deleted, paid or cancelled. The schema has no OpenAPI links, so no stateful (chained) run.

Database. The world is committed once per module (pytest-django's `django_db_blocker`) rather
than per test: flushing the database after each of ~170 tests would cost minutes. Each test runs
in pytest-django's transaction (`django_db`), rolled back at its end; the module's teardown
flushes the world. Django's per-request connection handling is switched off during the module,
as Django's own test client does, so a request does not close the test's connection. A request
that ends in a database error (a value PostgreSQL refuses, answered 400) aborts the test's
transaction, where in production only its statement fails: the example's savepoint is rolled
back before the audits.

Hypothesis settings:
- `max_examples`: `FUZZ_EXAMPLES` (default 10), per operation and role, for the generated
  examples; Schemathesis adds its explicit-example and coverage cases (boundaries, missing and
  wrong-typed fields, empty values, unexpected methods: most of the ~9,000 requests) on top.
  `make test` runs the default, about 4 minutes on the 2-core machine; `make fuzz` runs 200.
- `derandomize=True`: the same examples on every run and machine, so CI is reproducible and a
  failure is reproduced by running the test again. `make fuzz` explores more (FUZZ_EXAMPLES)
  rather than differently.
- `database=None`: no example database (derandomized runs replay nothing from it anyway), and
  Hypothesis' other caches (constants, Unicode tables) go to the system's temporary directory:
  no `.hypothesis/` directory in the checkout.
- `deadline=None` and the `too_slow` health check suppressed: a request through the whole stack
  on a busy 2-core machine takes what it takes; speed is measured in bench/, not here.

Throttle rates are raised for these tests (counters would otherwise run out after a few dozen
requests and turn the rest into 429s); throttling has tests of its own. Requests carry no NUL
characters (`allow_x00=False`): API.md says a body with one is a 400 `parse_error` wherever it
is (PostgreSQL stores none), which OpenAPI cannot express per string; tests/test_hostile_input.py
covers it.

What the fuzzing found in inventory's API (JSON types, the currency, a zero stock delta, the
`parent` and `attr` query values) is fixed and kept as regression tests in
tests/test_inventory_schema_findings.py; every operation is held to all the checks above.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from django.db import transaction
from hypothesis import HealthCheck, settings
from hypothesis.configuration import set_hypothesis_home_dir
from PIL import Image
from rest_framework.throttling import SimpleRateThrottle
from schemathesis.core.parameters import ParameterLocation
from schemathesis.openapi.checks import RejectedPositiveData
from schemathesis.specs.openapi.checks import positive_data_acceptance

from accounts.models import User
from accounts.roles import sync_role_groups
from accounts.tokens import ShopRefreshToken
from common.openapi import FRAMEWORK_ERROR_CODES
from inventory.images import product_image_create
from inventory.selectors import stock_audit
from inventory.services import category_create, product_create
from orders.selectors import payment_audit
from orders.services import cart_item_add, order_place
from orders.tests.helpers import SUCCESS_CARD, mark_paid
from payments.models import Payment
from payments.services import payment_method_create

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "10"))
set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "shop-schema-fuzz-hypothesis")
ADDRESS = {
    "name": "Ann Smith",
    "line1": "1 Main Street",
    "city": "Berlin",
    "postal_code": "10115",
    "country": "DE",
}


def _load_schema(*, signed_in: bool, coverage: bool) -> Any:
    """The served schema. Anonymous requests fuzz the `Authorization` header too (missing,
    malformed, forged: 401 as documented); a signed-in role always sends its own token, so its
    requests are generated without one (the token is then no part of what is fuzzed).

    Schemathesis' coverage phase (every boundary, missing field, wrong type and empty value the
    schema implies, some 60 requests an operation) tests the shape of the input, the same for
    every caller, and takes most of the time; it runs where the request gets past authorization:
    for anonymous callers on the operations anyone may call, and for staff, who may call them all.
    A customer, and an anonymous caller elsewhere, get the generated examples."""
    loaded = schemathesis.openapi.from_wsgi("/api/schema/?format=json", get_wsgi_application())
    loaded.config.generation.update(allow_x00=False, with_security_parameters=not signed_in)
    if not coverage:
        loaded.config.phases.update(phases=["examples", "fuzzing"])
    return loaded


def _anyone_may_call(context: Any) -> bool:
    """An operation whose documented security lets a request without a token through."""
    security = context.operation.definition.raw.get("security")
    return security is None or {} in security


public_schema = _load_schema(signed_in=False, coverage=True).include(_anyone_may_call)
protected_schema = _load_schema(signed_in=False, coverage=False).exclude(_anyone_may_call)
customer_schema = _load_schema(signed_in=True, coverage=False)
staff_schema = _load_schema(signed_in=True, coverage=True)


@dataclass
class World:
    """What the seeded world's path parameters are, for each role."""

    users: dict[str, User] = field(default_factory=dict)
    ids: dict[str, dict[str, Any]] = field(default_factory=dict)


def _user(email: str, role: str) -> User:
    from django.utils import timezone

    user = User.objects.create_user(
        email=email,
        password="correct-horse-battery-staple",
        role=role,
        email_verified_at=timezone.now(),
    )
    sync_role_groups(user)
    return user


def _jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 6), "red").save(out, "JPEG")
    return out.getvalue()


def _seed() -> World:
    root = category_create(name="Audio")
    child = category_create(name="Headphones", parent=root)
    product = product_create(
        sku="HP-100", name="Studio Headphones", category=child, price_cents=4999, on_hand=50
    )
    other = product_create(sku="HP-200", name="Cable", category=child, price_cents=999, on_hand=50)
    image = product_image_create(product=product, upload=io.BytesIO(_jpeg()))
    customer = _user("customer@example.com", User.Role.CUSTOMER)
    staff = _user("staff@example.com", User.Role.STAFF)
    world = World()
    world.ids["common"] = {"category": child.pk, "product": product.pk, "image": image.pk}
    for role, user in (("customer", customer), ("staff", staff)):
        method = payment_method_create(user=user, card=SUCCESS_CARD)
        cart_item_add(user=user, product_id=other.pk, quantity=1)
        pending = order_place(user=user, shipping_address=ADDRESS)
        cart_item_add(user=user, product_id=other.pk, quantity=1)
        paid = order_place(user=user, shipping_address=ADDRESS)
        mark_paid(order_id=paid.pk, actor=None)
        line = cart_item_add(user=user, product_id=product.pk, quantity=1)
        charge = Payment.objects.get(order_id=paid.pk)
        world.users[role] = user
        world.ids[role] = {
            "pending_order": str(pending.pk),
            "paid_order": str(paid.pk),
            "method": str(method.pk),
            "cart_item": line.pk,
            "payment": str(charge.pk),
            "user": customer.pk,
        }
    world.ids["anonymous"] = world.ids["customer"]
    return world


@pytest.fixture(scope="module")
def world(
    django_db_setup: None, django_db_blocker: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    from django.core.management import call_command
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections
    from django.test import override_settings

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    media = override_settings(MEDIA_ROOT=tmp_path_factory.mktemp("media"))
    with django_db_blocker.unblock(), media:
        try:
            yield _seed()
        finally:
            call_command("flush", interactive=False, verbosity=0)
            request_started.connect(close_old_connections)
            request_finished.connect(close_old_connections)


@pytest.fixture(autouse=True)
def _unthrottled(throttle_rates: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    rates = dict.fromkeys(SimpleRateThrottle.THROTTLE_RATES, "1000000/min")
    for scope, rate in rates.items():  # DRF's throttles read this dict, bound at import
        monkeypatch.setitem(SimpleRateThrottle.THROTTLE_RATES, scope, rate)
    throttle_rates(**rates)  # the project's own limits read the settings


def _real_path_parameters(case: Any, world: World, role: str) -> None:
    mine, common = world.ids[role], world.ids["common"]
    path = case.operation.path
    by_collection = {
        "/api/v1/categories/": common["category"],
        "/api/v1/products/": common["product"],
        "/api/v1/payment-methods/": mine["method"],
        "/api/v1/payments/": mine["payment"],
        "/api/v1/users/": mine["user"],
        "/api/v1/orders/": (
            mine["paid_order"]
            if path.endswith(("/ship/", "/refund/", "/deliver/"))
            else mine["pending_order"]
        ),
    }
    real: dict[str, Any] = {
        "gateway": "test",
        "item_id": mine["cart_item"],
        "product_id": common["product"],
        "image_id": common["image"],
        "id": next(
            (value for prefix, value in by_collection.items() if path.startswith(prefix)), None
        ),
    }
    for name in case.path_parameters:
        if real.get(name) is not None:
            case.path_parameters[name] = str(real[name])  # as it travels in the URL


def _uses_real_ids(case: Any) -> bool:
    """Three cases in four (deterministically, by the generated values), unless the path
    parameters are the invalid ones of a negative case."""
    if not case.path_parameters or case.meta.is_negative_at(ParameterLocation.PATH):
        return False
    return zlib.crc32(repr(sorted(case.path_parameters.items())).encode()) % 4 != 0


def _documented_codes(case: Any, status: int) -> set[str]:
    """Every error `code` the schema lists for this operation's `status` response."""
    raw = case.operation.schema.raw_schema
    codes: set[str] = set()
    seen: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str):
                if ref not in seen:
                    seen.add(ref)
                    target = raw
                    for part in ref.removeprefix("#/").split("/"):
                        target = target[part]
                    walk(target)
                return
            code = node.get("properties", {}).get("code", {})
            codes.update(code.get("enum", ()))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(case.operation.definition.raw.get("responses", {}).get(str(status), {}))
    return codes


# Codes a schema-valid request can still get in a `validation_error`, because what they refuse is
# something OpenAPI cannot state about a single value: another object's existence (state), or a
# rule across fields. Keyed by (operation or "*", attr or "*"); each entry says why.
STATEFUL_OR_CROSS_FIELD: dict[tuple[str, str], set[str]] = {
    # A reference to an object that does not exist (DRF's PrimaryKeyRelatedField).
    ("*", "*"): {"does_not_exist"},
    # `format: email` is what an email address is documented as; Django's validator is stricter
    # than the format's definition (a top-level domain of two letters or more, no `..`).
    ("*", "email"): {"invalid"},
    ("POST /api/v1/payment-methods/", "billing_details.email"): {"invalid"},
    # The range between two parameters: in order, and at most 3 years.
    ("GET /api/v1/reports/sales/", "date_from"): {"date_from_after_date_to", "range_too_long"},
    ("GET /api/v1/reports/top-products/", "date_from"): {
        "date_from_after_date_to",
        "range_too_long",
    },
    # A card: the Luhn checksum and a supported brand (number), a CVC as long as the brand's,
    # an expiry not before today; and either a card or a token, not both.
    ("POST /api/v1/payment-methods/", "card.number"): {"invalid"},
    ("POST /api/v1/payment-methods/", "card.cvc"): {"invalid"},
    ("POST /api/v1/payment-methods/", "card.exp_month"): {"invalid"},
    ("POST /api/v1/payment-methods/", "card.exp_year"): {"invalid"},
    ("POST /api/v1/payment-methods/", "non_field_errors"): {"invalid"},
    # A category filter naming no category (inventory answers `invalid`, not `does_not_exist`),
    # and a price range upside down (`max_price` below `min_price`).
    ("GET /api/v1/products/", "category"): {"invalid"},
    ("GET /api/v1/products/", "max_price"): {"invalid"},
}


def _explained_codes(label: str, attr: str | None) -> set[str]:
    keys = [(label, attr or ""), ("*", attr or ""), ("*", "*")]
    return set().union(*(STATEFUL_OR_CROSS_FIELD.get(key, set()) for key in keys))


def _refusal_not_about_shape(case: Any, body: dict[str, Any], status: int) -> bool:
    """Is this refusal of a schema-valid request one the schema could not have announced?"""
    errors = body.get("errors") or [{}]
    if body.get("type") == "client_error":
        # A domain error the operation documents (`domain_error_responses`), never a parse error.
        codes = {error.get("code") for error in errors}
        framework = set(FRAMEWORK_ERROR_CODES.get(status, ()))
        return not codes & framework and codes <= _documented_codes(case, status)
    if body.get("type") == "validation_error":
        label = case.operation.label
        return all(
            error.get("code") in _explained_codes(label, error.get("attr")) for error in errors
        )
    return False


def positive_data_acceptance_but_domain_errors(ctx: Any, response: Any, case: Any) -> bool | None:
    """`positive_data_acceptance`, except for a refusal the schema cannot announce.

    A well-formed request can still be refused by the state of the world (a wrong current
    password, an expired reset link, an unknown card token, a declined card, an unsigned webhook,
    a product not for sale) or by a rule across fields: a documented domain error, or one of the
    validation codes above. Anything else for schema-valid data stays a failure: then the schema
    did not say what the server refuses."""
    try:
        return positive_data_acceptance(ctx, response, case)
    except RejectedPositiveData:
        try:
            body = json.loads(response.content)
        except ValueError:
            raise
        if isinstance(body, dict) and _refusal_not_about_shape(case, body, response.status_code):
            return None
        raise


def _transaction_failed() -> bool:
    """Did the request end the test's transaction with a database error (a value the database
    refused, answered 400)? In production that statement alone fails; here the whole
    transaction does, until rolled back to the example's savepoint."""
    from django.db import connection
    from psycopg.pq import TransactionStatus

    raw = connection.connection
    return raw is not None and raw.info.transaction_status == TransactionStatus.INERROR


HYPOTHESIS = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def _call_and_validate(case: Any, world: World, role: str) -> None:
    if _uses_real_ids(case):
        _real_path_parameters(case, world, role)
    savepoint = transaction.savepoint()
    try:
        user = world.users.get(role)
        # Minted for each example: a run longer than an access token lives (15 minutes) must
        # not turn into a run of 401s.
        token = str(ShopRefreshToken.for_user(user).access_token) if user else None
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        case.call_and_validate(
            headers=headers,
            excluded_checks=[positive_data_acceptance],
            additional_checks=[positive_data_acceptance_but_domain_errors],
        )
        if _transaction_failed():
            transaction.savepoint_rollback(savepoint)
            savepoint = transaction.savepoint()
        assert stock_audit() == []
        assert payment_audit() == []
    finally:
        transaction.savepoint_rollback(savepoint)


@public_schema.parametrize()  # type: ignore[untyped-decorator]
@HYPOTHESIS
@pytest.mark.django_db
def test_anonymous_requests_keep_to_the_schema(case: Any, world: World) -> None:
    _call_and_validate(case, world, "anonymous")


@protected_schema.parametrize()  # type: ignore[untyped-decorator]
@HYPOTHESIS
@pytest.mark.django_db
def test_anonymous_requests_need_a_token_as_documented(case: Any, world: World) -> None:
    _call_and_validate(case, world, "anonymous")


@customer_schema.parametrize()  # type: ignore[untyped-decorator]
@HYPOTHESIS
@pytest.mark.django_db
def test_customer_requests_keep_to_the_schema(case: Any, world: World) -> None:
    _call_and_validate(case, world, "customer")


@staff_schema.parametrize()  # type: ignore[untyped-decorator]
@HYPOTHESIS
@pytest.mark.django_db
def test_staff_requests_keep_to_the_schema(case: Any, world: World) -> None:
    _call_and_validate(case, world, "staff")
