"""The reports' SQL, in one place, so the live reports and the rollup share every rule.

How a day's figures are made (`_PAID`, `_LIVE_DAYS`, `_LIVE_PRODUCTS`), given a CTE `wanted(day)`
of store-local days:

- a payment belongs to the day of its `settled_at` in the store's time zone,
  `(settled_at AT TIME ZONE %(tz)s)::date`, and only succeeded payments count. The UTC range
  around the day (six hours wider than any DST shift on either side) only lets the partial index
  `payments_pay_succeeded_settled` find the candidates; the local date decides, so a day computed
  live and the same day read from the rollup cannot disagree about an instant near midnight;
- `revenue_cents` sums the day's succeeded charges, `refunded_cents` its succeeded refunds;
- an order is paid on the day of its first succeeded charge (`first_charges`; an order has one,
  the check only keeps a second one from counting the order twice). `orders` counts those,
  `items_sold` adds up their lines' quantities, and top-products their lines by product.

Every value comes in as a parameter (`%(tz)s`, dates, the period's unit); nothing is formatted
into the text. Statements are built once, at import, from the constant fragments below.
"""

from __future__ import annotations

# -- the days the rollup holds (in this time zone, finished, within the range) ----------------
_ROLLED = """
rolled AS (
    SELECT day, orders, items_sold, revenue_cents, refunded_cents
    FROM reports_dailysales
    WHERE time_zone = %(tz)s
      AND day BETWEEN %(date_from)s AND %(date_to)s
      AND day < %(today)s
)"""

# -- every day of the range the rollup lacks: computed live ------------------------------------
_WANTED_MISSING = """
wanted AS (
    SELECT d::date AS day
    FROM generate_series(%(date_from)s::timestamp, %(date_to)s::timestamp, interval '1 day') AS d
    WHERE d::date NOT IN (SELECT day FROM rolled)
)"""

# -- every day of the range (the rollup writer) ------------------------------------------------
_WANTED_ALL = """
wanted AS (
    SELECT d::date AS day
    FROM generate_series(%(date_from)s::timestamp, %(date_to)s::timestamp, interval '1 day') AS d
)"""

# The plan must stay "a few index probes per wanted day", however many days PostgreSQL guesses
# are wanted (usually one: today; it cannot know). So each step is a correlated subquery with
# `OFFSET 0`, which keeps the planner from flattening it into a hash join over whole tables:
# one range scan of the partial index `payments_pay_succeeded_settled` per day, one probe of the
# payments' `order_id` index and one of the order lines' per paid order.
_PAID = """
paid AS MATERIALIZED (
    SELECT w.day, p.id, p.order_id, p.kind, p.amount_cents, p.settled_at
    FROM wanted AS w
    CROSS JOIN LATERAL (
        SELECT p.id, p.order_id, p.kind, p.amount_cents, p.settled_at
        FROM payments_payment AS p
        WHERE p.status = 'succeeded'
          AND p.settled_at >= (w.day::timestamp AT TIME ZONE %(tz)s) - interval '6 hours'
          AND p.settled_at < ((w.day + 1)::timestamp AT TIME ZONE %(tz)s) + interval '6 hours'
          AND (p.settled_at AT TIME ZONE %(tz)s)::date = w.day
        OFFSET 0
    ) AS p
),
first_charges AS MATERIALIZED (
    SELECT c.day, c.order_id
    FROM paid AS c
    WHERE c.kind = 'charge'
      AND NOT EXISTS (
          SELECT 1 FROM payments_payment AS e
          WHERE e.order_id = c.order_id
            AND e.kind = 'charge'
            AND e.status = 'succeeded'
            AND (e.settled_at, e.id) < (c.settled_at, c.id)
          OFFSET 0
      )
)"""

_LIVE_DAYS = """
live AS (
    SELECT w.day,
           coalesce(o.orders, 0)::bigint AS orders,
           coalesce(o.items_sold, 0)::bigint AS items_sold,
           coalesce(m.revenue_cents, 0)::bigint AS revenue_cents,
           coalesce(m.refunded_cents, 0)::bigint AS refunded_cents
    FROM wanted AS w
    LEFT JOIN (
        SELECT day,
               sum(amount_cents) FILTER (WHERE kind = 'charge') AS revenue_cents,
               sum(amount_cents) FILTER (WHERE kind = 'refund') AS refunded_cents
        FROM paid
        GROUP BY day
    ) AS m ON m.day = w.day
    LEFT JOIN (
        SELECT f.day, count(*) AS orders, sum(units.quantity) AS items_sold
        FROM first_charges AS f
        CROSS JOIN LATERAL (
            SELECT sum(i.quantity) AS quantity FROM orders_orderitem AS i
            WHERE i.order_id = f.order_id
        ) AS units
        GROUP BY f.day
    ) AS o ON o.day = w.day
)"""

_LIVE_PRODUCTS = """
live_products AS (
    SELECT f.day,
           i.product_id,
           sum(i.quantity)::bigint AS quantity,
           sum(i.unit_price_cents * i.quantity)::bigint AS revenue_cents
    FROM first_charges AS f
    CROSS JOIN LATERAL (
        SELECT i.product_id, i.quantity, i.unit_price_cents FROM orders_orderitem AS i
        WHERE i.order_id = f.order_id
        OFFSET 0
    ) AS i
    GROUP BY f.day, i.product_id
)"""

_PERIODS = """
periods AS (
    SELECT d::date AS period
    FROM generate_series(
        date_trunc(%(unit)s, %(date_from)s::timestamp), %(date_to)s::timestamp, %(step)s::interval
    ) AS d
)"""


# For the report statements (see `selectors._rows` and `services.rollup_days`).
JIT_OFF = "SET LOCAL jit = off"


def _with(*ctes: str) -> str:
    return "WITH" + ",".join(ctes) + "\n"


# One statement: rollup rows for finished days, live figures for the rest, grouped into every
# period of the range (empty ones as zeros). `period` is the period's first day (weeks: Monday).
SALES = (
    _with(_ROLLED, _WANTED_MISSING, _PAID, _LIVE_DAYS, _PERIODS)  # noqa: S608 (constants only)
    + """
SELECT p.period,
       coalesce(sum(d.orders), 0)::bigint,
       coalesce(sum(d.items_sold), 0)::bigint,
       coalesce(sum(d.revenue_cents), 0)::bigint,
       coalesce(sum(d.refunded_cents), 0)::bigint
FROM periods AS p
LEFT JOIN (
    SELECT day, orders, items_sold, revenue_cents, refunded_cents FROM rolled
    UNION ALL
    SELECT day, orders, items_sold, revenue_cents, refunded_cents FROM live
) AS d ON date_trunc(%(unit)s, d.day::timestamp)::date = p.period
GROUP BY p.period
ORDER BY p.period
"""
)

# One statement: the per-product rollup of rolled-up days plus live lines for the rest, by
# quantity, then revenue, then product id (a stable order for ties).
TOP_PRODUCTS = (
    _with(_ROLLED, _WANTED_MISSING, _PAID, _LIVE_PRODUCTS)  # noqa: S608 (constants only)
    + """
SELECT t.product_id, pr.sku, pr.name, t.quantity, t.revenue_cents
FROM (
    SELECT s.product_id,
           sum(s.quantity)::bigint AS quantity,
           sum(s.revenue_cents)::bigint AS revenue_cents
    FROM (
        SELECT r.product_id, r.quantity, r.revenue_cents
        FROM reports_dailyproductsales AS r
        WHERE r.day BETWEEN %(date_from)s AND %(date_to)s
          AND r.day IN (SELECT day FROM rolled)
        UNION ALL
        SELECT product_id, quantity, revenue_cents FROM live_products
    ) AS s
    GROUP BY s.product_id
    ORDER BY 2 DESC, 3 DESC, 1
    LIMIT %(limit)s
) AS t
JOIN inventory_product AS pr ON pr.id = t.product_id
ORDER BY t.quantity DESC, t.revenue_cents DESC, t.product_id
"""
)

# Active products only; a product without a stock row has nothing on hand (available 0).
INVENTORY = """
SELECT count(*),
       coalesce(sum(coalesce(s.on_hand, 0)), 0)::bigint,
       coalesce(sum(coalesce(s.on_hand, 0)::numeric * p.price_cents), 0)::bigint,
       count(*) FILTER (
           WHERE coalesce(s.on_hand - s.reserved, 0) > 0
             AND coalesce(s.on_hand - s.reserved, 0) <= coalesce(s.low_stock_threshold, 0)
       ),
       count(*) FILTER (WHERE coalesce(s.on_hand - s.reserved, 0) <= 0)
FROM inventory_product AS p
LEFT JOIN inventory_stocklevel AS s ON s.product_id = p.id
WHERE p.is_active
"""

# What a cached sales or top-products response depends on: the latest settlement of a succeeded
# payment (one backward step of the partial index `payments_pay_succeeded_settled`) and the
# latest rollup write.
DATA_VERSION = """
SELECT (SELECT max(settled_at) FROM payments_payment WHERE status = 'succeeded'),
       (SELECT max(computed_at) FROM reports_dailysales)
"""

# -- the rollup writer: the same figures for every day of the range ---------------------------
# One writer at a time (the nightly task and a backfill may overlap).
ROLLUP_LOCK = "SELECT pg_advisory_xact_lock(hashtext('reports.rollup'))"
ROLLUP_DELETE_DAYS = (
    "DELETE FROM reports_dailysales WHERE day BETWEEN %(date_from)s AND %(date_to)s"
)
ROLLUP_DELETE_PRODUCTS = (
    "DELETE FROM reports_dailyproductsales WHERE day BETWEEN %(date_from)s AND %(date_to)s"
)
ROLLUP_INSERT_DAYS = (
    _with(_WANTED_ALL, _PAID, _LIVE_DAYS)
    + """
INSERT INTO reports_dailysales
    (day, time_zone, orders, items_sold, revenue_cents, refunded_cents, computed_at)
SELECT day, %(tz)s, orders, items_sold, revenue_cents, refunded_cents, %(now)s FROM live
"""
)
ROLLUP_INSERT_PRODUCTS = (
    _with(_WANTED_ALL, _PAID, _LIVE_PRODUCTS)
    + """
INSERT INTO reports_dailyproductsales (day, product_id, quantity, revenue_cents)
SELECT day, product_id, quantity, revenue_cents FROM live_products
"""
)
# Finished days of a window that have no row in this time zone (holes the nightly task fills).
ROLLUP_MISSING_DAYS = """
SELECT d::date
FROM generate_series(%(date_from)s::timestamp, %(date_to)s::timestamp, interval '1 day') AS d
WHERE NOT EXISTS (
    SELECT 1 FROM reports_dailysales AS r WHERE r.day = d::date AND r.time_zone = %(tz)s
)
ORDER BY 1
"""
