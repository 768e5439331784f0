import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from conftest import client_for
from payments.crypto import card_fingerprint
from payments.gateways.test import TestGateway
from payments.models import PaymentMethod

from .conftest import (
    AMEX,
    DECLINED,
    EXP_YEAR,
    INSUFFICIENT_FUNDS,
    MASTERCARD,
    PROCESSING_ERROR,
    SUCCESS,
    TEST_CARDS,
    card_body,
)

pytestmark = pytest.mark.django_db
URL = "/api/v1/payment-methods/"


@pytest.mark.parametrize(
    ("number", "outcome"),
    [
        (SUCCESS, "ok"),
        (DECLINED, "card_declined"),
        (INSUFFICIENT_FUNDS, "insufficient_funds"),
        (PROCESSING_ERROR, "processing_error"),
    ],
)
def test_each_test_card_is_saved_with_only_safe_details(customer, customer_client, number, outcome):
    body = {**card_body(number), "billing_details": {"name": "Ada Lovelace"}}
    response = customer_client.post(URL, body, format="json")

    assert response.status_code == 201, response.content
    data = response.json()
    assert data == {
        "id": data["id"],
        "kind": "card",
        "brand": "visa",
        "last4": number[-4:],
        "exp_month": 12,
        "exp_year": EXP_YEAR,
        "is_default": True,
        "billing_details": {"name": "Ada Lovelace"},
        "created_at": data["created_at"],
    }
    method = PaymentMethod.objects.get()
    assert method.user == customer
    assert method.gateway == "test"
    assert method.gateway_token.split(".")[:4] == ["tok_test", outcome, "visa", number[-4:]]
    assert method.fingerprint == card_fingerprint(number)
    assert number not in method.gateway_token


def test_brand_comes_from_the_number(customer_client):
    response = customer_client.post(URL, card_body(AMEX, cvc="1234"), format="json")
    assert response.status_code == 201, response.content
    assert (response.json()["brand"], response.json()["last4"]) == ("amex", "0005")


def test_spaces_in_the_number_are_ignored(customer_client):
    response = customer_client.post(URL, card_body("4242 4242 4242 4242"), format="json")
    assert response.status_code == 201
    assert PaymentMethod.objects.get().fingerprint == card_fingerprint(SUCCESS)


def test_same_card_twice_is_409_and_nothing_is_added(customer_client):
    assert customer_client.post(URL, card_body(SUCCESS), format="json").status_code == 201
    response = customer_client.post(
        URL, card_body("4242-4242-4242-4242", exp_month=1, exp_year=2041), format="json"
    )
    assert response.status_code == 409
    assert response.json()["errors"][0]["code"] == "duplicate_payment_method"
    assert PaymentMethod.objects.count() == 1


def test_same_card_for_two_users_is_fine(customer, make_user):
    other = make_user()
    assert client_for(customer).post(URL, card_body(), format="json").status_code == 201
    assert client_for(other).post(URL, card_body(), format="json").status_code == 201
    assert PaymentMethod.objects.count() == 2


def test_database_refuses_a_duplicate_fingerprint(customer, make_method):
    method = make_method(customer)
    with pytest.raises(IntegrityError), transaction.atomic():
        PaymentMethod.objects.create(
            user=customer,
            gateway="test",
            gateway_token="tok",
            brand="visa",
            last4="4242",
            exp_month=1,
            exp_year=2040,
            fingerprint=method.fingerprint,
        )


def test_database_allows_one_default_per_user(customer, make_method):
    make_method(customer, SUCCESS)
    second = make_method(customer, MASTERCARD)
    with pytest.raises(IntegrityError), transaction.atomic():
        PaymentMethod.objects.filter(pk=second.pk).update(is_default=True)


def _past_month() -> tuple[int, int]:
    today = timezone.now().date()
    return (12, today.year - 1) if today.month == 1 else (today.month - 1, today.year)


@pytest.mark.parametrize(
    ("card", "attr", "code"),
    [
        ({"number": "4242424242424241"}, "card.number", "invalid"),
        ({"number": "4242"}, "card.number", "invalid"),
        ({"number": "4242abcd42424242"}, "card.number", "invalid"),
        ({"number": "9999999999999995"}, "card.number", "invalid"),
        ({"number": ""}, "card.number", "blank"),
        ({"exp_month": 13}, "card.exp_month", "max_value"),
        ({"exp_month": 0}, "card.exp_month", "min_value"),
        ({"exp_year": timezone.now().year - 1}, "card.exp_year", "invalid"),
        ({"cvc": "12"}, "card.cvc", "invalid"),
        ({"cvc": "1234"}, "card.cvc", "invalid"),
        ({"cvc": "12a"}, "card.cvc", "invalid"),
        ({"number": AMEX, "cvc": "123"}, "card.cvc", "invalid"),
    ],
)
def test_bad_card_input_is_400_on_that_field(customer_client, card, attr, code):
    response = customer_client.post(URL, card_body(**card), format="json")

    assert response.status_code == 400, response.content
    body = response.json()
    assert body["type"] == "validation_error"
    assert [(error["attr"], error["code"]) for error in body["errors"]] == [(attr, code)]
    assert PaymentMethod.objects.count() == 0


def test_past_month_of_this_year_is_an_expiry_error(customer_client):
    month, year = _past_month()
    response = customer_client.post(URL, card_body(exp_month=month, exp_year=year), format="json")
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert error["attr"] in ("card.exp_month", "card.exp_year")
    assert error["detail"] == "The card has expired."


def test_missing_card_fields_are_named(customer_client):
    response = customer_client.post(URL, {"card": {}}, format="json")
    assert response.status_code == 400
    assert sorted(error["attr"] for error in response.json()["errors"]) == [
        "card.cvc",
        "card.exp_month",
        "card.exp_year",
        "card.number",
    ]


@pytest.mark.parametrize("body", [{}, {**card_body(), "token": "tok_x"}])
def test_exactly_one_of_card_and_token(customer_client, body):
    response = customer_client.post(URL, body, format="json")
    assert response.status_code == 400
    assert response.json()["errors"][0]["attr"] == "non_field_errors"


def test_a_client_side_token_is_accepted(customer, customer_client):
    from payments.gateways.base import CardDetails

    token = TestGateway(webhook_secret="client-side").tokenize(
        CardDetails(number=MASTERCARD, exp_month=3, exp_year=2039, cvc="321")
    )
    token = TestGateway(webhook_secret="client-side").describe_token(token.token)

    response = customer_client.post(URL, {"token": token.token}, format="json")

    assert response.status_code == 201, response.content
    assert (response.json()["brand"], response.json()["last4"]) == ("mastercard", "4444")
    assert response.json()["exp_month"] == 3
    # The same confirmed method posted again (a retry, or after the gateway's webhook saved
    # it) is the saved one, not a duplicate.
    again = customer_client.post(URL, {"token": token.token}, format="json")
    assert (again.status_code, again.json()["id"]) == (201, response.json()["id"])
    assert PaymentMethod.objects.count() == 1


def test_an_unknown_token_is_400(customer_client):
    response = customer_client.post(URL, {"token": "tok_nonsense"}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"][0] == {
        "code": "invalid_token",
        "detail": "The payment gateway does not know this token.",
        "attr": "token",
    }
    assert PaymentMethod.objects.count() == 0


def test_first_card_is_default_and_a_new_default_moves_the_flag(customer, customer_client):
    first = customer_client.post(URL, card_body(SUCCESS), format="json").json()
    second = customer_client.post(URL, card_body(MASTERCARD), format="json").json()
    assert (first["is_default"], second["is_default"]) == (True, False)

    third = customer_client.post(
        URL, {**card_body(DECLINED), "is_default": True}, format="json"
    ).json()

    defaults = list(PaymentMethod.objects.filter(is_default=True).values_list("id", flat=True))
    assert [str(pk) for pk in defaults] == [third["id"]]


def test_set_default(customer, customer_client, make_method):
    first = make_method(customer, SUCCESS)
    second = make_method(customer, MASTERCARD)

    response = customer_client.post(f"{URL}{second.pk}/set-default/")

    assert response.status_code == 200
    assert response.json()["is_default"] is True
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.is_default, second.is_default) == (False, True)
    # Asking again changes nothing.
    assert customer_client.post(f"{URL}{second.pk}/set-default/").status_code == 200
    assert PaymentMethod.objects.filter(is_default=True).count() == 1


def test_delete_own_method_promotes_the_newest_other(customer, customer_client, make_method):
    default = make_method(customer, SUCCESS)
    older = make_method(customer, MASTERCARD)
    newer = make_method(customer, DECLINED)

    response = customer_client.delete(f"{URL}{default.pk}/")

    assert response.status_code == 204
    assert set(PaymentMethod.objects.values_list("id", flat=True)) == {older.pk, newer.pk}
    newer.refresh_from_db()
    assert newer.is_default is True


def test_delete_last_method(customer, customer_client, make_method):
    method = make_method(customer)
    assert customer_client.delete(f"{URL}{method.pk}/").status_code == 204
    assert PaymentMethod.objects.count() == 0


@pytest.mark.parametrize(("method_name", "suffix"), [("delete", ""), ("post", "set-default/")])
def test_another_users_method_is_404_and_untouched(
    customer, make_user, make_method, method_name, suffix
):
    method = make_method(customer)
    stranger = client_for(make_user())

    response = getattr(stranger, method_name)(f"{URL}{method.pk}/{suffix}")

    assert response.status_code == 404
    method.refresh_from_db()
    assert method.is_default is True


def test_not_a_uuid_is_404(customer_client):
    assert customer_client.delete(f"{URL}not-a-uuid/").status_code == 404


def test_list_shows_only_own_methods_in_fixed_queries(
    customer, customer_client, make_user, make_method, django_assert_num_queries
):
    for number in TEST_CARDS:
        make_method(customer, number)
    make_method(make_user(), SUCCESS)

    with django_assert_num_queries(3):  # user, count, page
        response = customer_client.get(URL)

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 4
    assert body["results"][0]["last4"] == "4242"  # the default first
    assert sorted(item["last4"] for item in body["results"]) == ["0002", "0119", "4242", "9995"]


def test_anonymous_is_401(api_client):
    assert api_client.get(URL).status_code == 401
    assert api_client.post(URL, card_body(), format="json").status_code == 401
