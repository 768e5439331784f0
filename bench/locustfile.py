"""Locust users for `make load` (bench/load.py runs this headless against its own stack).

The runner prepares a scratch catalog, customers (verified email, a 4242 card and the slow test
card 4000000000000077 each), staff users and their JWTs, and passes them in the JSON file named
by LOAD_DATA; this file makes no Django import. Simulated users, by weight (shares of the users,
not of the requests):

- 60 browsers: product list pages (plain, by category id or slug, by price range, ordered), page
  1 and then, for most of them, on through the `next` links to pages 2 to 5; the category
  tree and a category's children;
- 15 searchers: full-text search with words of the catalog generator's vocabulary;
- 10 detail readers: a product by id or by slug;
- 10 buyers, each its own customer: add a product to the cart (a quarter of the time one of five
  with 2 units, which sell out), check out with an Idempotency-Key (after a refused checkout,
  empty the cart first), pay (LOAD_SLOW_SHARE of the payments, default 0.2, with the slow
  test card);
- 5 staff: receive stock, list paid orders, ship one;
- and one health checker (not weighted) asking /readyz once a second.

Requests are grouped per endpoint with `name=` ("GET /products/{id}/"). Answers a working system
gives under load are successes: 409 `insufficient_stock` (a product sold out), 409
`invalid_transition` (two staff shipping one order) and 429 (throttled); any other status a request
should not get is a Locust failure with the status and the start of the body. Every request is
also recorded (endpoint, start, milliseconds, status, success) and written to the JSON file named
by LOAD_SAMPLES when Locust quits: the runner computes its table and the checks from it.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import time
import uuid
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from locust import FastHttpUser, between, constant_pacing, events, task

if not os.environ.get("LOAD_DATA"):
    raise SystemExit(
        "bench/locustfile.py runs under `make load` (bench/load.py), which prepares LOAD_DATA"
    )
DATA: dict[str, Any] = json.loads(Path(os.environ["LOAD_DATA"]).read_text())
API = "/api/v1"
ADDRESS = {
    "name": "Load Tester",
    "line1": "1 Main Street",
    "city": "Berlin",
    "postal_code": "10115",
    "country": "DE",
}
ORDERINGS = ("price_cents", "-price_cents", "name", "-name", "created_at", "-created_at")
# Statuses that are right answers under load (see the docstring); the rest are failures.
SOLD_OUT, THROTTLED = 409, 429
_customers = itertools.cycle(DATA["customers"])
_staff = itertools.cycle(DATA["staff"])

# --- recording -----------------------------------------------------------------------------------
_samples: list[tuple[str, float, float, int, bool]] = []
_failures: defaultdict[str, Counter[str]] = defaultdict(Counter)
_window: dict[str, float] = {}


def _started(**_: Any) -> None:
    _window["started"] = time.time()


def _stopped(**_: Any) -> None:
    _window["stopped"] = time.time()


def _record(
    name: str,
    response_time: float,
    start_time: float,
    response: Any = None,
    exception: BaseException | None = None,
    **_: Any,
) -> None:
    status = int(getattr(response, "status_code", 0) or 0)
    _samples.append((name, start_time, response_time, status, exception is None))
    if exception is not None:
        _failures[name][str(exception)[:300]] += 1


def _write(**_: Any) -> None:
    target = os.environ.get("LOAD_SAMPLES")
    if target:
        Path(target).write_text(
            json.dumps(
                {
                    **_window,
                    "samples": _samples,
                    "failures": {name: dict(counts) for name, counts in _failures.items()},
                }
            )
        )


for _hook, _listener in (
    (events.test_start, _started),
    (events.test_stop, _stopped),
    (events.request, _record),
    (events.quitting, _write),
):
    _hook.add_listener(_listener)  # type: ignore[no-untyped-call]


# --- requests ------------------------------------------------------------------------------------
class ShopUser(FastHttpUser):
    abstract = True
    wait_time = between(0.5, 1.5)
    token = ""

    def call(
        self,
        method: str,
        path: str,
        name: str,
        *,
        ok: tuple[int, ...] = (200,),
        tolerated: tuple[int, ...] = (),
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        """One request; (status, parsed JSON or None). A status in `ok` or `tolerated` (or 429)
        is a success, anything else a failure naming the status."""
        all_headers = dict(headers or {})
        if self.token:
            all_headers["Authorization"] = f"Bearer {self.token}"
        with self.client.request(
            method, API + path, name=name, json=body, headers=all_headers, catch_response=True
        ) as response:
            status = int(response.status_code or 0)
            if status in ok or status in tolerated or status == THROTTLED:
                response.success()
            else:
                text = (response.text or "")[:200] if status else str(response.error)[:200]
                response.failure(f"HTTP {status}: {text}")
            parsed = None
            if status in ok and response.content:
                try:
                    parsed = response.json()
                except ValueError:
                    response.failure(f"HTTP {status}: not JSON")
            return status, parsed


def _category() -> Any:
    """A category by id or (a third of the time) by slug, as clients send either."""
    category = random.choice(DATA["categories"])
    return category["slug"] if random.random() < 0.33 else category["id"]


class Browser(ShopUser):
    weight = 60

    def listing(self, query: str, name: str) -> None:
        """Page 1 of a listing, then on through its `next` links as far as the user reads
        (pages 2 to 5 for about half of them), thinking between pages."""
        pages = random.choice((1, 1, 1, 2, 2, 3, 4, 5))
        status, page = self.call("GET", f"/products/?{query}", name)
        for _ in range(pages - 1):
            if status != 200 or not page or not page.get("next"):
                return
            self.wait()  # type: ignore[no-untyped-call]
            next_url = urlsplit(page["next"])
            status, page = self.call(
                "GET", f"{next_url.path.removeprefix(API)}?{next_url.query}", name
            )

    @task(3)
    def category_page(self) -> None:
        self.listing(f"category={_category()}", "GET /products/?category")

    @task(2)
    def plain_page(self) -> None:
        self.listing("page=1", "GET /products/")

    @task(2)
    def price_range(self) -> None:
        low = random.choice((0, 1000, 2500, 5000, 10000, 25000))
        high = low + random.choice((1000, 2500, 5000, 20000))
        query = f"min_price={low}&max_price={high}"
        if random.random() < 0.5:
            query += f"&category={_category()}"
        self.listing(query, "GET /products/?min_price&max_price")

    @task(2)
    def ordered(self) -> None:
        query = f"ordering={random.choice(ORDERINGS)}"
        if random.random() < 0.5:
            query += f"&category={_category()}"
        self.listing(query, "GET /products/?ordering")

    @task(1)
    def tree(self) -> None:
        self.call("GET", "/categories/tree/", "GET /categories/tree/")

    @task(1)
    def children(self) -> None:
        parent = random.choice(DATA["categories"])["id"]
        self.call("GET", f"/categories/?parent={parent}", "GET /categories/?parent")


class Searcher(ShopUser):
    weight = 15

    @task
    def search(self) -> None:
        term = random.choice(DATA["search_terms"]).replace(" ", "+")
        status, page = self.call("GET", f"/products/?search={term}", "GET /products/?search")
        if status == 200 and page and page.get("next") and random.random() < 0.2:
            self.wait()  # type: ignore[no-untyped-call]
            next_url = urlsplit(page["next"])
            self.call(
                "GET",
                f"{next_url.path.removeprefix(API)}?{next_url.query}",
                "GET /products/?search",
            )


class DetailReader(ShopUser):
    weight = 10

    @task(2)
    def by_id(self) -> None:
        product = random.choice(DATA["products"])
        self.call("GET", f"/products/{product['id']}/", "GET /products/{id}/")

    @task(1)
    def by_slug(self) -> None:
        product = random.choice(DATA["products"])
        self.call("GET", f"/products/{product['slug']}/", "GET /products/{slug}/")


class Buyer(ShopUser):
    """A customer of its own (the runner makes one per simulated user), so two simulated users
    never share a cart."""

    weight = 10
    wait_time = between(1, 3)

    def on_start(self) -> None:
        customer = next(_customers)
        self.token = customer["token"]
        self.card = customer["card"]
        self.slow_card = customer["slow_card"]

    cart_left_over = False

    @task
    def buy(self) -> None:
        if self.cart_left_over:  # the last checkout was refused: start again with an empty cart
            self.call("DELETE", "/cart/", "DELETE /cart/", ok=(204,))
            self.cart_left_over = False
        scarce = DATA["scarce"] and random.random() < 0.25
        product = random.choice(DATA["scarce"] if scarce else DATA["buyable"])
        status, _ = self.call(
            "POST",
            "/cart/items/",
            "POST /cart/items/",
            ok=(201,),
            tolerated=(SOLD_OUT,),
            body={"product": product, "quantity": random.choice((1, 1, 1, 2, 3))},
        )
        if status != 201:
            return
        status, order = self.call(
            "POST",
            "/orders/",
            "POST /orders/",
            ok=(201,),
            tolerated=(SOLD_OUT,),
            body={"shipping_address": ADDRESS},
            headers={"Idempotency-Key": str(uuid.uuid4())},
        )
        if status != 201 or order is None:
            self.cart_left_over = True
            return
        slow = random.random() < DATA["slow_share"]
        self.call(
            "POST",
            f"/orders/{order['id']}/pay/",
            DATA["slow_pay_name"] if slow else "POST /orders/{id}/pay/ (4242)",
            body={"payment_method": self.slow_card if slow else self.card},
            headers={"Idempotency-Key": str(uuid.uuid4())},
        )


class Staff(ShopUser):
    weight = 5
    wait_time = between(1, 3)

    def on_start(self) -> None:
        self.token = next(_staff)

    @task(2)
    def receive_stock(self) -> None:
        product = random.choice(DATA["buyable"])
        self.call(
            "POST",
            f"/products/{product}/stock/adjust/",
            "POST /products/{id}/stock/adjust/",
            ok=(201,),
            body={"delta": random.choice((5, 10, 20)), "reason": "receipt", "note": "load"},
        )

    @task(2)
    def ship_one(self) -> None:
        status, page = self.call("GET", "/orders/?status=paid", "GET /orders/?status=paid")
        if status != 200 or not page or not page["results"]:
            return
        order = random.choice(page["results"])
        self.call(
            "POST",
            f"/orders/{order['id']}/ship/",
            "POST /orders/{id}/ship/",
            tolerated=(SOLD_OUT,),  # 409 invalid_transition: another staff user shipped it first
            body={"carrier": "DHL", "tracking_number": f"LOAD{random.randint(0, 10**9)}"},
        )

    @task(1)
    def all_orders(self) -> None:
        self.call("GET", "/orders/", "GET /orders/")


class HealthChecker(FastHttpUser):
    fixed_count = 1
    wait_time = constant_pacing(1)

    @task
    def ready(self) -> None:
        with self.client.get("/readyz", name="GET /readyz", catch_response=True) as response:
            if response.status_code == 200:
                response.success()
            else:
                response.failure(f"HTTP {response.status_code}: {(response.text or '')[:200]}")
