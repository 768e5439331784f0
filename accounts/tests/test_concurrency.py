"""Races on the session tables, with real concurrent transactions."""

import threading
from typing import Any

import pytest
from django.db import connection
from rest_framework.test import APIClient

from accounts import services
from accounts.models import User

from .conftest import PASSWORD, login

REFRESH = "/api/v1/auth/token/refresh/"


def run_together(count: int, work) -> list[Any]:
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count

    def run(index: int) -> None:
        try:
            barrier.wait()
            results[index] = work(index)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


@pytest.mark.django_db(transaction=True)
def test_one_refresh_token_used_at_once_from_many_places_works_once(make_user):
    make_user(email="ann@example.com")
    refresh = login("ann@example.com")["refresh"]

    statuses = run_together(
        6, lambda _: APIClient().post(REFRESH, {"refresh": refresh}).status_code
    )

    assert sorted(statuses) == [200, 401, 401, 401, 401, 401]


@pytest.mark.django_db(transaction=True)
def test_the_same_email_registered_at_once_makes_one_account():
    def register(index: int) -> int:
        body = {
            "email": "Race@Example.com" if index % 2 else "race@example.com",
            "password": PASSWORD,
        }
        return (
            APIClient()
            .post("/api/v1/auth/register/", body, REMOTE_ADDR=f"10.9.0.{index}")
            .status_code
        )

    statuses = run_together(4, register)

    assert statuses == [202, 202, 202, 202]  # the same answer for the winner and the others
    assert User.objects.filter(email__iexact="race@example.com").count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_refresh_racing_a_suspension_never_outlives_it(make_user):
    user = make_user(email="ann@example.com")
    admin = make_user("admin", email="boss@example.com")
    pairs = [login("ann@example.com") for _ in range(3)]

    def work(index: int):
        if index == 0:
            return services.user_suspend(actor=admin, user=User.objects.get(pk=user.pk))
        response = APIClient().post(REFRESH, {"refresh": pairs[index]["refresh"]})
        return response.json().get("refresh")

    results = run_together(3, work)

    for new_refresh in results[1:]:
        if new_refresh:  # refreshed just before the suspension: blacklisted by it
            assert APIClient().post(REFRESH, {"refresh": new_refresh}).status_code == 401
    for pair in pairs:
        assert APIClient().post(REFRESH, {"refresh": pair["refresh"]}).status_code == 401
