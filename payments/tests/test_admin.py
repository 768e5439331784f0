import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_browser(admin_user):
    client = Client()
    client.force_login(admin_user)
    return client


def test_payment_methods_are_masked_and_read_only(admin_browser, customer, make_method):
    method = make_method(customer, billing_details={"name": "Secret Name"})

    listing = admin_browser.get("/admin/payments/paymentmethod/")
    detail = admin_browser.get(f"/admin/payments/paymentmethod/{method.pk}/change/")

    assert listing.status_code == 200
    assert "Visa •••• 4242 (12/2040)" in listing.content.decode()
    assert detail.status_code == 200
    page = detail.content.decode()
    assert method.gateway_token not in page
    assert method.fingerprint not in page
    assert "Secret Name" not in page
    assert 'name="_save"' not in page
    assert admin_browser.get("/admin/payments/paymentmethod/add/").status_code == 403


def test_payments_list_filters_and_is_read_only(admin_browser, paid_charge):
    listing = admin_browser.get(
        "/admin/payments/payment/?status__exact=succeeded&kind__exact=charge"
    )
    assert listing.status_code == 200
    assert str(paid_charge.pk) in listing.content.decode()
    assert (
        str(paid_charge.pk)
        not in admin_browser.get("/admin/payments/payment/?status__exact=failed").content.decode()
    )
    detail = admin_browser.get(f"/admin/payments/payment/{paid_charge.pk}/change/")
    assert detail.status_code == 200
    assert 'name="_save"' not in detail.content.decode()
    assert (
        admin_browser.post(f"/admin/payments/payment/{paid_charge.pk}/delete/").status_code == 403
    )


def test_webhook_events_admin(admin_browser):
    assert admin_browser.get("/admin/payments/webhookevent/").status_code == 200
