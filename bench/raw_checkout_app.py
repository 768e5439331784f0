"""The floor for `bench_checkout`: the same checkout with no framework (psycopg 3 + orjson + PyJWT).

A WSGI app served by the same gunicorn settings as the project (config/gunicorn.conf.py), against
the same scratch database. For `POST /api/v1/orders/` it does the work the project's checkout
does, in one transaction, and answers the same 201 JSON shape:

- verify the bearer JWT as simplejwt does (HS256 with `SECRET_KEY`, `exp`, `token_type` access,
  a `jti`) and read the user row (active, email verified);
- lock the cart row, read its lines with their products (in product-id order), refuse an empty
  cart (400) or an inactive product (400);
- insert the order under a random number (`ON CONFLICT DO NOTHING`, retried), its items (one
  multi-row INSERT), its first event and the confirmation email's outbox row; empty the cart;
- last, one conditional `UPDATE ... WHERE on_hand - reserved >= n RETURNING` per product in
  product-id order (409 `insufficient_stock` and a rollback on the first that fails), then the
  ledger rows in one INSERT (and a low-stock alert's outbox row when a product crosses its
  threshold); commit.

It never relays the outbox rows (no broker): the project's relay after the commit is work the
floor does not do. psycopg runs with its defaults (server-side binding, statements prepared
after 5 executions). Every response carries `X-SQL-Statements`: the statements that request
sent, BEGIN and COMMIT included.

    DATABASE_URL=... SECRET_KEY=... gunicorn -c config/gunicorn.conf.py bench.raw_checkout_app
"""

from __future__ import annotations

import os
import secrets
import threading
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import orjson
import psycopg
from psycopg.types.json import Jsonb

SECRET_KEY = os.environ["SECRET_KEY"]
DATABASE_URL = os.environ["DATABASE_URL"]
CURRENCY = os.environ.get("STORE_CURRENCY", "USD")
PAYMENT_TIMEOUT = timedelta(minutes=int(os.environ.get("ORDER_PAYMENT_TIMEOUT_MINUTES", "30")))
FRONTEND_URL = os.environ.get("FRONTEND_URL", "http://localhost:3000")
ALPHABET = "23456789ABCDEFGHJKMNPQRSTWXYZ"
ADDRESS_FIELDS = ("name", "line1", "line2", "city", "postal_code", "country")
EMAIL_TASK = "common.tasks.send_email_task"
LOW_STOCK_TASK = "inventory.tasks.send_low_stock_alert"

StartResponse = Callable[[str, list[tuple[str, str]]], Any]


class Refused(Exception):  # noqa: N818 - an HTTP answer, not a failure
    def __init__(self, status: str, code: str, details: Iterable[tuple[str, str | None]]) -> None:
        super().__init__(code)
        self.status = status
        self.body = {
            "type": "client_error",
            "errors": [{"code": code, "detail": detail, "attr": attr} for detail, attr in details],
        }


class Counted(threading.local):
    """A connection whose `execute` counts statements (BEGIN and COMMIT counted by the app); one
    per thread, as gunicorn's gthread workers serve several requests at once."""

    def __init__(self) -> None:
        self.conn: psycopg.Connection[Any] | None = None
        self.count = 0

    def connection(self) -> psycopg.Connection[Any]:
        if self.conn is None or self.conn.closed:
            self.conn = psycopg.connect(DATABASE_URL, autocommit=False)
        return self.conn

    def execute(self, sql: str, params: Any = None) -> psycopg.Cursor[Any]:
        self.count += 1
        return self.connection().execute(sql, params)  # type: ignore[arg-type]


DB = Counted()


def _money(cents: int) -> str:
    whole, part = divmod(cents, 100)
    return f"{whole}.{part:02d} {CURRENCY}"


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def _user_id(environ: dict[str, Any]) -> int:
    scheme, _, token = environ.get("HTTP_AUTHORIZATION", "").partition(" ")
    if scheme != "Bearer" or not token:
        raise Refused("401 Unauthorized", "not_authenticated", [("No credentials.", None)])
    try:
        claims = jwt.decode(token, SECRET_KEY, algorithms=["HS256"])
    except jwt.PyJWTError:
        raise Refused("401 Unauthorized", "token_not_valid", [("Bad token.", None)]) from None
    if claims.get("token_type") != "access" or "jti" not in claims:
        raise Refused("401 Unauthorized", "token_not_valid", [("Bad token.", None)])
    return int(claims["user_id"])


def _address(body: dict[str, Any]) -> dict[str, str]:
    given = body.get("shipping_address")
    if not isinstance(given, dict):
        raise Refused("400 Bad Request", "required", [("This field is required.", "address")])
    address = {field: str(given.get(field, "")) for field in ADDRESS_FIELDS}
    for field in ("name", "line1", "city", "postal_code", "country"):
        if not address[field]:
            raise Refused("400 Bad Request", "required", [("Required.", f"address.{field}")])
    address["country"] = address["country"].upper()
    return address


def _checkout(user_id: int, address: dict[str, str], note: str) -> dict[str, Any]:
    row = DB.execute(
        "SELECT email, first_name, is_active, email_verified_at IS NOT NULL "
        "FROM accounts_user WHERE id = %s",
        [user_id],
    ).fetchone()
    if row is None or not row[2]:
        raise Refused("401 Unauthorized", "user_inactive", [("User is inactive.", None)])
    email, first_name, _, verified = row
    if not verified:
        raise Refused("403 Forbidden", "email_not_verified", [("Verify your email.", None)])
    cart = DB.execute(
        "SELECT id FROM orders_cart WHERE user_id = %s FOR UPDATE", [user_id]
    ).fetchone()
    lines = (
        DB.execute(
            "SELECT ci.product_id, ci.quantity, p.sku, p.name, p.price_cents, p.is_active "
            "FROM orders_cartitem ci JOIN inventory_product p ON p.id = ci.product_id "
            "WHERE ci.cart_id = %s ORDER BY ci.product_id",
            [cart[0]],
        ).fetchall()
        if cart is not None
        else []
    )
    if not lines:
        raise Refused("400 Bad Request", "cart_empty", [("Your cart is empty.", None)])
    inactive = [line[2] for line in lines if not line[5]]
    if inactive:
        raise Refused(
            "400 Bad Request",
            "product_unavailable",
            [(f"{sku} is no longer for sale.", "items") for sku in inactive],
        )
    total = sum(line[4] * line[1] for line in lines)
    now = datetime.now(UTC)
    expires_at = now + PAYMENT_TIMEOUT
    order_id = uuid.uuid4()
    for _ in range(5):
        number = "SO-" + "".join(secrets.choice(ALPHABET) for _ in range(6))
        inserted = DB.execute(
            "INSERT INTO orders_order (id, number, user_id, status, currency, subtotal_cents, "
            "total_cents, shipping_address, note, expires_at, carrier, tracking_number, "
            "created_at, updated_at) VALUES (%s, %s, %s, 'pending', %s, %s, %s, %s, %s, %s, "
            "'', '', %s, %s) ON CONFLICT (number) DO NOTHING RETURNING id",
            [order_id, number, user_id, CURRENCY, total, total, Jsonb(address), note,
             expires_at, now, now],
        ).fetchone()  # fmt: skip
        if inserted is not None:
            break
    else:
        raise RuntimeError("no free order number")
    item_rows = ", ".join(["(%s, %s, %s, %s, %s, %s)"] * len(lines))
    DB.execute(
        "INSERT INTO orders_orderitem (order_id, product_id, sku, name, unit_price_cents, "  # noqa: S608
        f"quantity) VALUES {item_rows}",
        [v for line in lines for v in (order_id, line[0], line[2], line[3], line[4], line[1])],
    )
    DB.execute(
        "INSERT INTO orders_orderevent (order_id, from_status, to_status, actor_id, note, "
        "created_at) VALUES (%s, '', 'pending', %s, '', %s)",
        [order_id, user_id, now],
    )
    context = {
        "name": first_name or email,
        "number": number,
        "status": "pending",
        "items": [
            {"sku": line[2], "name": line[3], "quantity": line[1],
             "line_total": _money(line[4] * line[1])}
            for line in lines
        ],
        "total": _money(total),
        "carrier": "",
        "tracking_number": "",
        "expired": False,
        "expires_at": f"{expires_at:%Y-%m-%d %H:%M} UTC",
        "order_url": f"{FRONTEND_URL}/orders/{order_id}",
    }  # fmt: skip
    _outbox(EMAIL_TASK, {"template": "order_confirmation", "to": [email], "context": context}, now)
    DB.execute("DELETE FROM orders_cartitem WHERE cart_id = %s", [cart[0]])
    ledger: list[Any] = []
    newly_low: list[int] = []
    reference = f"order:{number}"
    for product_id, quantity, sku, *_ in lines:
        level = DB.execute(
            "UPDATE inventory_stocklevel SET reserved = reserved + %(q)s, "
            "low_stock_alerted = on_hand - reserved - %(q)s <= low_stock_threshold, "
            "updated_at = %(now)s WHERE product_id = %(id)s AND on_hand - reserved >= %(q)s "
            "RETURNING on_hand, reserved, low_stock_threshold",
            {"q": quantity, "now": now, "id": product_id},
        ).fetchone()
        if level is None:
            raise Refused(
                "409 Conflict",
                "insufficient_stock",
                [(f"{sku}: not enough available, {quantity} requested.", "items")],
            )
        on_hand, reserved, threshold = level
        if on_hand - reserved <= threshold < on_hand - reserved + quantity:
            newly_low.append(product_id)
        ledger += [product_id, "reservation", 0, quantity, on_hand, reserved, user_id,
                   reference, "", now]  # fmt: skip
    DB.execute(
        "INSERT INTO inventory_stockmovement (product_id, reason, delta_on_hand, "
        "delta_reserved, on_hand_after, reserved_after, actor_id, reference, note, created_at) "
        "VALUES " + ", ".join(["(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"] * len(lines)),
        ledger,
    )
    if newly_low:
        _outbox(LOW_STOCK_TASK, {"product_ids": newly_low, "total": len(newly_low)}, now)
    created = _iso(now)
    return {
        "id": str(order_id),
        "number": number,
        "status": "pending",
        "customer": {"id": user_id, "email": email},
        "items": [
            {"product": line[0], "sku": line[2], "name": line[3], "unit_price_cents": line[4],
             "quantity": line[1], "line_total_cents": line[4] * line[1]}
            for line in lines
        ],
        "subtotal_cents": total,
        "total_cents": total,
        "currency": CURRENCY,
        "shipping_address": address,
        "note": note,
        "carrier": "",
        "tracking_number": "",
        "events": [{"from_status": None, "to_status": "pending", "actor": user_id, "note": "",
                    "created_at": created}],
        "payments": [],
        "payment_confirming": False,
        "expires_at": _iso(expires_at),
        "created_at": created,
        "updated_at": created,
    }  # fmt: skip


def _outbox(task: str, kwargs: dict[str, Any], now: datetime) -> None:
    DB.execute(
        "INSERT INTO common_outboxmessage (id, task, kwargs, created_at, available_at, "
        "attempts, last_error) VALUES (%s, %s, %s, %s, %s, 0, '')",
        [uuid.uuid4(), task, Jsonb(kwargs), now, now],
    )


def application(environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
    DB.count = 0
    path, method = environ.get("PATH_INFO", ""), environ.get("REQUEST_METHOD", "")
    if path == "/healthz":
        start_response("200 OK", [("Content-Type", "application/json")])
        return [b'{"status":"ok"}']
    if path != "/api/v1/orders/" or method != "POST":
        start_response("404 Not Found", [("Content-Type", "application/json")])
        return [b'{"type":"client_error","errors":[]}']
    status, body = "201 Created", b""
    try:
        user_id = _user_id(environ)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        payload = orjson.loads(environ["wsgi.input"].read(length) or b"{}")
        address = _address(payload)
        DB.count += 1  # BEGIN, sent by psycopg before the first statement
        try:
            result = _checkout(user_id, address, str(payload.get("note", "")))
        except BaseException:
            if DB.conn is not None and not DB.conn.closed:
                DB.conn.rollback()
            raise
        DB.connection().commit()
        DB.count += 1
        body = orjson.dumps(result)
    except Refused as refused:
        status, body = refused.status, orjson.dumps(refused.body)
    headers = [
        ("Content-Type", "application/json"),
        ("Content-Length", str(len(body))),
        ("X-SQL-Statements", str(DB.count)),
    ]
    start_response(status, headers)
    return [body]
