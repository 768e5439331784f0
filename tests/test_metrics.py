"""/metrics: the business counters move when their fact happens (and only once it is committed),
the door lets in only the token's bearer or, without a token, this host, and the counts are
exact across processes (two writers, and gunicorn with two workers, one of them killed).

Counters are process-wide and other tests move them too, so each test compares before and
after. The processes started here run against the test database on 127.0.0.1 and every wait is
bounded. Long on purpose: every series the README documents has its test here, in one place."""

from __future__ import annotations

import json
import os
import runpy
import signal
import smtplib
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core import mail
from django.core.mail.backends.locmem import EmailBackend
from django.db import transaction
from prometheus_client import REGISTRY
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from accounts.models import User
from common import metrics
from common.emails import send_email
from common.tasks import send_email_task
from inventory.models import MovementReason, Product
from inventory.services import category_create, product_create, stock_adjust
from orders.models import Order
from orders.services import cart_item_add, order_place
from orders.tests.conftest import ADDRESS
from payments.gateways.base import CardDetails, GatewayResult
from payments.gateways.test import TestGateway
from payments.services import payment_method_create
from tests.conftest import ROOT, Process, _database_url, free_port, wait_for

pytestmark = pytest.mark.django_db

SUCCEEDS, DECLINES = "4242424242424242", "4000000000000002"
TOKEN = "metrics-token-for-tests"


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


class Moves:
    """The change of some samples of this process's registry across a block."""

    def __init__(self, *samples: tuple[str, dict[str, str]]) -> None:
        self.samples = samples
        self.before = [value(name, **labels) for name, labels in samples]

    def by(self) -> list[float]:
        return [
            value(name, **labels) - before
            for (name, labels), before in zip(self.samples, self.before, strict=True)
        ]


def sample(name: str, **labels: str) -> tuple[str, dict[str, str]]:
    return name, labels


def scrape(client: Any, **headers: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """GET /metrics and parse it; every series must appear exactly once."""
    response = client.get("/metrics", **headers)
    assert response.status_code == 200, response.content
    return parse(response.content.decode())


def parse(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for family in text_string_to_metric_families(text):
        for one in family.samples:
            key = (one.name, frozenset(one.labels.items()))
            assert key not in samples, f"{key} exported twice"
            samples[key] = one.value
    return samples


def series(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str):
    return samples.get((name, frozenset(labels.items())), 0.0)


# --- a shop to sell from -----------------------------------------------------------------------


@pytest.fixture
def product(db: None) -> Product:
    """5 on hand at 12.50, low at 3 or fewer available."""
    category = category_create(name="Metrics")
    return product_create(
        sku="MET-1",
        name="Metered",
        category=category,
        price_cents=1250,
        on_hand=5,
        low_stock_threshold=3,
    )


def checkout(client: Any, product: Product, quantity: int = 2) -> Any:
    added = client.post(
        "/api/v1/cart/items/", {"product": product.pk, "quantity": quantity}, format="json"
    )
    assert added.status_code == 201, added.content
    return client.post("/api/v1/orders/", {"shipping_address": ADDRESS}, format="json")


def pay(client: Any, user: User, order_id: str, number: str) -> Any:
    card = CardDetails(number=number, exp_month=12, exp_year=2040, cvc="123")
    method = payment_method_create(user=user, card=card)
    return client.post(f"/api/v1/orders/{order_id}/pay/", {"payment_method": str(method.pk)})


PLACED = sample("shop_orders_placed_total")
VALUE_COUNT = sample("shop_order_value_cents_count")
VALUE_SUM = sample("shop_order_value_cents_sum")
DURATION_COUNT = sample("shop_checkout_duration_seconds_count")
CONFLICTS = sample("shop_checkout_conflicts_total")
PAID = sample("shop_orders_paid_total")
REVENUE = sample("shop_revenue_cents_total")
CROSSINGS = sample("shop_low_stock_crossings_total")


# --- the business counters ---------------------------------------------------------------------


def test_a_checkout_counts_the_order_its_value_its_time_and_a_low_stock_crossing(
    customer, customer_client, staff, product, django_capture_on_commit_callbacks
):
    confirmations = sample("shop_emails_sent_total", template="order_confirmation")
    alerts = sample("shop_emails_sent_total", template="low_stock")
    moves = Moves(PLACED, VALUE_COUNT, VALUE_SUM, DURATION_COUNT, CROSSINGS, confirmations, alerts)

    with django_capture_on_commit_callbacks(execute=True):
        response = checkout(customer_client, product)  # 5 - 2 = 3 available: low from now

    assert response.status_code == 201, response.content
    assert moves.by() == [1, 1, 2500, 1, 1, 1, 1]


def test_a_rolled_back_checkout_counts_nothing(
    customer, product, django_capture_on_commit_callbacks
):
    moves = Moves(PLACED, VALUE_COUNT, DURATION_COUNT, CROSSINGS, CONFLICTS)

    def place_then_fail() -> None:
        with transaction.atomic():
            cart_item_add(user=customer, product_id=product.pk, quantity=2)
            order_place(user=customer, shipping_address=ADDRESS)
            raise RuntimeError("the caller's transaction fails after the checkout")

    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
    ):
        place_then_fail()

    assert callbacks == []
    assert moves.by() == [0, 0, 0, 0, 0]
    assert mail.outbox == []
    assert not Order.objects.exists()


def test_a_409_for_short_stock_counts_a_conflict_and_no_order(
    customer, customer_client, product, django_capture_on_commit_callbacks
):
    customer_client.post("/api/v1/cart/items/", {"product": product.pk, "quantity": 4})
    # 2 left: the cart asks for more than the shelf holds by the time of checkout.
    stock_adjust(product_id=product.pk, delta=-3, reason=MovementReason.DAMAGE, actor=None)
    moves = Moves(CONFLICTS, PLACED, CROSSINGS)

    with django_capture_on_commit_callbacks(execute=True):
        response = customer_client.post(
            "/api/v1/orders/", {"shipping_address": ADDRESS}, format="json"
        )

    assert response.status_code == 409
    assert response.json()["errors"][0]["code"] == "insufficient_stock"
    assert moves.by() == [1, 0, 0]


def test_paying_counts_the_order_and_its_revenue_a_decline_counts_its_code(
    customer, customer_client, product, django_capture_on_commit_callbacks
):
    declined = sample("shop_payment_declines_total", code="card_declined")
    with django_capture_on_commit_callbacks(execute=True):
        order_id = checkout(customer_client, product).json()["id"]
    moves = Moves(declined, PAID, REVENUE)

    with django_capture_on_commit_callbacks(execute=True):
        refused = pay(customer_client, customer, order_id, DECLINES)
    assert refused.status_code == 402
    assert moves.by() == [1, 0, 0]

    with django_capture_on_commit_callbacks(execute=True):
        accepted = pay(customer_client, customer, order_id, SUCCEEDS)
    assert accepted.status_code == 200, accepted.content
    assert moves.by() == [1, 1, 2500]


def test_a_refund_counts_once_with_its_cents(
    customer, customer_client, staff_client, product, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        order_id = checkout(customer_client, product).json()["id"]
        assert pay(customer_client, customer, order_id, SUCCEEDS).status_code == 200
    moves = Moves(sample("shop_refunds_total"), sample("shop_refunds_cents_total"), PAID)

    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(
            f"/api/v1/orders/{order_id}/refund/", {"amount_cents": 700, "restock": False}
        )

    assert response.status_code == 200, response.content
    assert moves.by() == [1, 700, 0]


def test_a_refund_the_gateway_refuses_counts_as_failed(
    customer,
    customer_client,
    staff_client,
    product,
    monkeypatch,
    django_capture_on_commit_callbacks,
):
    with django_capture_on_commit_callbacks(execute=True):
        order_id = checkout(customer_client, product).json()["id"]
        assert pay(customer_client, customer, order_id, SUCCEEDS).status_code == 200

    def refuse(self, **kwargs):  # a gateway that says no (we cannot reach a card network)
        return GatewayResult(succeeded=False, gateway_reference="", failure_code="refund_failed")

    monkeypatch.setattr(TestGateway, "refund", refuse)
    moves = Moves(sample("shop_refunds_failed_total"), sample("shop_refunds_total"))
    staff_client.raise_request_exception = False  # a 502: the test client would re-raise it

    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(f"/api/v1/orders/{order_id}/refund/", {"restock": False})

    assert response.status_code == 409  # a final refusal, not an outage
    assert moves.by() == [1, 0]


class DownSMTPBackend(EmailBackend):
    """Stands in for a mail relay that refuses every message (we cannot reach a real one)."""

    def send_messages(self, messages):
        raise smtplib.SMTPServerDisconnected("relay went away")


def test_an_email_counts_as_sent_by_template(django_capture_on_commit_callbacks):
    moves = Moves(sample("shop_emails_sent_total", template="_test"))
    with django_capture_on_commit_callbacks(execute=True):
        send_email(template="_test", to=["ann@example.com"], context={"name": "Ann"})
    assert len(mail.outbox) == 1
    assert moves.by() == [1]


def test_a_refused_email_counts_as_failed_and_its_task_as_failed(
    settings, django_capture_on_commit_callbacks, allow_outbox_failures
):
    settings.EMAIL_BACKEND = f"{__name__}.DownSMTPBackend"
    moves = Moves(
        sample("shop_emails_failed_total", template="_test"),
        sample("shop_emails_sent_total", template="_test"),
        sample("shop_task_failures_total", task="common.tasks.send_email_task"),
    )
    with django_capture_on_commit_callbacks(execute=True):
        send_email(template="_test", to=["ann@example.com"], context={"name": "Ann"})
    # The outbox kept the failure (and retries it); it never reached the caller.
    assert moves.by() == [1, 0, 1]


def test_a_plain_celery_task_that_raises_counts_as_a_task_failure(settings):
    settings.EMAIL_BACKEND = f"{__name__}.DownSMTPBackend"
    failures = Moves(sample("shop_task_failures_total", task="common.tasks.send_email_task"))
    kwargs = {"template": "_test", "to": ["ann@example.com"], "context": {"name": "Ann"}}
    # No outbox row: Celery's task_failure signal counts it. Run as a worker runs it (the
    # exception kept in the result, not raised), the way the signal is sent.
    result = send_email_task.apply(kwargs=kwargs, throw=False)
    assert isinstance(result.result, smtplib.SMTPServerDisconnected)
    assert failures.by() == [1]


def test_a_broken_metric_never_fails_the_checkout(
    customer, customer_client, product, monkeypatch, django_capture_on_commit_callbacks, caplog
):
    def broken(*args: Any, **kwargs: Any) -> None:
        raise OSError("No space left on device")

    monkeypatch.setattr(metrics.ORDERS_PLACED, "inc", broken)
    monkeypatch.setattr(metrics.CHECKOUT_CONFLICTS, "inc", broken)

    with django_capture_on_commit_callbacks(execute=True):
        response = checkout(customer_client, product)

    assert response.status_code == 201, response.content
    assert Order.objects.filter(pk=response.json()["id"]).exists()
    assert any(record.message == "metric update failed" for record in caplog.records)
    metrics.checkout_conflict()  # nothing raised here either


def test_a_decline_code_outside_the_gateways_vocabulary_is_one_series():
    assert metrics._code("card_declined") == "card_declined"
    assert metrics._code("Card Declined!") == metrics.OTHER_CODE
    assert metrics._code("x" * 200) == metrics.OTHER_CODE


# --- the door ----------------------------------------------------------------------------------

DENIED = {
    "type": "client_error",
    "errors": [{"code": "permission_denied", "detail": metrics.FORBIDDEN, "attr": None}],
}


@pytest.mark.parametrize("address", ["127.0.0.1", "::1"])
def test_without_a_token_this_host_gets_the_metrics(api_client, settings, address):
    settings.METRICS_TOKEN = ""
    samples = scrape(api_client, REMOTE_ADDR=address)
    assert ("shop_outbox_waiting", frozenset()) in samples  # read from PostgreSQL, once


@pytest.mark.parametrize(
    "headers",
    [
        {"REMOTE_ADDR": "10.0.0.7"},
        # X-Forwarded-For is written by whoever sends the request: never a reason to let in.
        {"REMOTE_ADDR": "10.0.0.7", "HTTP_X_FORWARDED_FOR": "127.0.0.1"},
        {"REMOTE_ADDR": "10.0.0.7", "HTTP_AUTHORIZATION": "Bearer anything"},
    ],
)
def test_without_a_token_anyone_else_gets_403(api_client, settings, headers):
    settings.METRICS_TOKEN = ""
    response = api_client.get("/metrics", **headers)
    assert response.status_code == 403
    assert response.json() == DENIED


@pytest.mark.parametrize(
    ("authorization", "status"),
    [
        (f"Bearer {TOKEN}", 200),
        (f"bearer {TOKEN}", 200),
        (f"Bearer {TOKEN}x", 403),
        ("Bearer ", 403),
        (f"Basic {TOKEN}", 403),
        (TOKEN, 403),
        ("Bearer ünïcödé", 403),
        (None, 403),
    ],
)
@pytest.mark.parametrize("address", ["127.0.0.1", "203.0.113.9"])
def test_with_a_token_only_its_bearer_gets_the_metrics(
    api_client, settings, authorization, status, address
):
    settings.METRICS_TOKEN = TOKEN
    headers = {"REMOTE_ADDR": address}
    if authorization is not None:
        headers["HTTP_AUTHORIZATION"] = authorization
    response = api_client.get("/metrics", **headers)
    assert response.status_code == status
    if status == 403:  # loopback is no way around a token
        assert response.json() == DENIED
    else:
        assert b"shop_orders_placed_total" in response.content


# --- exact across processes --------------------------------------------------------------------

# A process writing to the multiprocess directory: `times` committed checkouts, conflicts and
# task failures through the real recording functions, then it exits ("exit") or stays alive
# ("stay", as a Celery worker sharing the directory on this host would).
WRITER = """
import sys, time
import django

django.setup()
from django.db import transaction
from common import metrics

mode, times = sys.argv[1], int(sys.argv[2])
for _ in range(times):
    with transaction.atomic():
        metrics.order_placed(total_cents=1000, started=time.perf_counter())
    metrics.checkout_conflict()
    metrics.task_failed(task="shared")
print("written", flush=True)
if mode == "stay":
    time.sleep(120)
"""


def child_env(**extra: str) -> dict[str, str]:
    """The environment of a process started here: the test database, nothing of pytest's."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "REDIS_", "CACHE_", "CELERY_", "PYTEST", "COV_"))
        and key not in ("PROMETHEUS_MULTIPROC_DIR", "METRICS_TOKEN")
    }
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "SECRET_KEY": settings.SECRET_KEY,
            "DATABASE_URL": _database_url(),
            "LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra)
    return env


def writer(directory: Path, log: Path, mode: str, times: int) -> Process:
    process = Process(
        f"writer-{mode}",
        [sys.executable, "-c", WRITER, mode, str(times)],
        child_env(PROMETHEUS_MULTIPROC_DIR=str(directory)),
        log,
    )
    process.start()
    return process


def test_two_processes_writing_the_same_directory_add_up_exactly(
    api_client, settings, tmp_path, monkeypatch
):
    directory = tmp_path / "metrics"
    directory.mkdir()
    first = writer(directory, tmp_path / "first.log", "exit", 3)
    second = writer(directory, tmp_path / "second.log", "exit", 4)  # at the same time
    for process in (first, second):
        assert process.process is not None
        assert process.process.wait(timeout=60) == 0, process.tail()
        process.kill()
    settings.METRICS_TOKEN = ""
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(directory))

    samples = scrape(api_client)  # this process's own counts are not in the files

    assert series(samples, "shop_orders_placed_total") == 7
    assert series(samples, "shop_order_value_cents_count") == 7
    assert series(samples, "shop_order_value_cents_sum") == 7000
    assert series(samples, "shop_checkout_conflicts_total") == 7
    assert series(samples, "shop_task_failures_total", task="shared") == 7
    assert ("shop_outbox_waiting", frozenset()) in samples  # added once, read from PostgreSQL


# --- under gunicorn ----------------------------------------------------------------------------

FORBIDDEN_SERIES = (
    "django_http_responses_total_by_status_view_method_total",
    {"status": "403", "view": "metrics", "method": "GET"},
)


class Gunicorn:
    """`config/gunicorn.conf.py` with two workers on 127.0.0.1, as `make run` starts it."""

    def __init__(self, tmp_path: Path, **env: str) -> None:
        self.port = free_port()
        self.process = Process(
            "gunicorn",
            [sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.conf.py", "config.wsgi"],
            child_env(
                HOST="127.0.0.1",
                PORT=str(self.port),
                WEB_CONCURRENCY="2",
                METRICS_TOKEN=TOKEN,
                HOME=str(tmp_path),  # where gunicorn would put its per-user control socket
                **env,
            ),
            tmp_path / "gunicorn.log",
        )
        self.forbidden = 0  # 403s answered: each counted by exactly one worker

    def start(self) -> None:
        self.process.start()
        wait_for(self.forbid, timeout=60, what=f"gunicorn\n{self.process.tail()}")

    def stop(self) -> None:
        self.process.kill(signal.SIGTERM)

    def get(self, *, token: str | None = None) -> tuple[int, bytes]:
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}/metrics")
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def forbid(self) -> bool:
        """One request without the token: a 403 in the error shape, from loopback too."""
        self.forbidden += self._forbid()
        return True

    def forbid_many(self, count: int) -> None:
        """`count` requests, 8 at a time, so that both workers are busy."""
        with ThreadPoolExecutor(max_workers=8) as pool:
            self.forbidden += sum(pool.map(lambda _: self._forbid(), range(count)))

    def _forbid(self) -> int:
        status, body = self.get()
        assert status == 403, body
        assert json.loads(body) == DENIED
        return 1

    def scrape(self) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        status, body = self.get(token=TOKEN)
        assert status == 200, body
        return parse(body.decode())

    def directory(self) -> Path:
        line = next(
            line
            for line in self.process.output().splitlines()
            if "Prometheus multiprocess directory: " in line
        )
        return Path(line.split("Prometheus multiprocess directory: ", 1)[1].strip())


def forbidden_by_pid(directory: Path) -> dict[int, float]:
    """How many 403s each process's own file holds."""
    counts: dict[int, float] = {}
    name, labels = FORBIDDEN_SERIES
    for path in directory.glob("counter_*.db"):
        for family in MultiProcessCollector.merge([str(path)]):
            for one in family.samples:
                if one.name == name and labels.items() <= one.labels.items():
                    pid = int(path.stem.rsplit("_", 1)[1])
                    counts[pid] = counts.get(pid, 0) + one.value
    return counts


def test_gunicorn_workers_add_up_exactly_and_a_dead_workers_counts_stay(tmp_path):
    directory = tmp_path / "metrics"
    directory.mkdir()
    # What an earlier server left (its process is gone), and a live process sharing the
    # directory (a Celery worker on this host).
    stale = writer(directory, tmp_path / "stale.log", "exit", 3)
    assert stale.process is not None
    assert stale.process.wait(timeout=60) == 0, stale.tail()
    stale.kill()
    alive = writer(directory, tmp_path / "alive.log", "stay", 5)
    server = Gunicorn(tmp_path, PROMETHEUS_MULTIPROC_DIR=str(directory))
    try:
        wait_for(lambda: "written" in alive.output(), timeout=60, what="the live writer")
        server.start()

        # Until both workers have answered some (the kernel picks who accepts), bounded.
        def both_answered() -> bool:
            server.forbid_many(20)
            return len(forbidden_by_pid(directory)) == 2

        wait_for(both_answered, timeout=60, what="both workers to answer", every=0)
        samples = server.scrape()
        name, labels = FORBIDDEN_SERIES
        assert series(samples, name, **labels) == server.forbidden
        assert series(samples, "shop_orders_placed_total") == 5  # the live writer's, not 3 + 5
        assert series(samples, "shop_task_failures_total", task="shared") == 5
        assert ("shop_outbox_waiting", frozenset()) in samples  # once (parse checks)

        # A worker killed outright: gunicorn starts another, and what it counted stays.
        victim = max(forbidden_by_pid(directory).items(), key=lambda item: item[1])[0]
        os.kill(victim, signal.SIGKILL)

        def replaced() -> bool:
            server.forbid_many(5)
            return len(forbidden_by_pid(directory)) == 3

        wait_for(replaced, timeout=60, what="the replacement worker to answer", every=0)
        assert series(server.scrape(), name, **labels) == server.forbidden
    finally:
        server.stop()
        alive.kill()
    assert directory.is_dir()  # a directory that was given is kept


def dead_pid() -> int:
    """The pid of a process that has come and gone."""
    process = subprocess.Popen([sys.executable, "-c", ""])
    process.wait(timeout=30)
    return process.pid


def test_gunicorn_without_a_directory_makes_one_and_removes_it_on_exit(tmp_path):
    # One left by a server that was killed (SIGKILL: no on_exit), named after its master.
    conf = runpy.run_path(str(ROOT / "config" / "gunicorn.conf.py"))
    parent = Path(conf["worker_tmp_dir"] or tempfile.gettempdir())
    leftover = Path(tempfile.mkdtemp(prefix=f"shop-metrics-{dead_pid()}-", dir=parent))
    (leftover / "counter_1.db").write_bytes(b"")
    server = Gunicorn(tmp_path)
    directory = None
    try:
        server.start()
        directory = server.directory()
        assert directory.is_dir()
        assert directory.parent == parent
        assert not leftover.exists()
        server.forbid_many(10)
        name, labels = FORBIDDEN_SERIES
        assert series(server.scrape(), name, **labels) == server.forbidden
        # No control socket shared with every other gunicorn of this user (gunicorn.conf.py).
        assert not (tmp_path / ".gunicorn").exists()
    finally:
        server.stop()
    assert directory is not None
    assert not directory.exists()
