"""Low-stock alerts: the one email staff get when products cross into "low" on stock.

`stock` decides when a level crosses (`low_stock_alerted` on the level, set by the same UPDATE
that moves it); the CSV importer's set-based write does too. Both call
`schedule_low_stock_alert` with the products that just crossed; the outbox task then calls
`stock_low_alert_send`.
"""

from __future__ import annotations

from collections.abc import Sequence

from common import metrics
from common.outbox import enqueue_after_commit

from ..models import StockLevel

LOW_STOCK_EMAIL_MAX = 100


def schedule_low_stock_alert(product_ids: Sequence[int]) -> None:
    """After commit, one email to staff naming the products that just became low on stock.

    One change (an order of many lines, a bulk import) sends one email, never one per product;
    it names at most `LOW_STOCK_EMAIL_MAX` of them and counts the rest.
    """
    if not product_ids:
        return
    from ..tasks import send_low_stock_alert

    named, total = list(product_ids[:LOW_STOCK_EMAIL_MAX]), len(product_ids)
    enqueue_after_commit(send_low_stock_alert, product_ids=named, total=total)
    metrics.low_stock_crossed(products=total)


def stock_low_alert_send(*, product_ids: Sequence[int], total: int | None = None) -> bool:
    """Email staff the given products that are still low on stock. Returns whether it sent."""
    from accounts.selectors import staff_emails
    from common.emails import send_email

    levels = [
        level
        for level in StockLevel.objects.select_related("product")
        .filter(product_id__in=product_ids)
        .order_by("product_id")
        if level.is_low
    ]
    recipients = staff_emails()
    if not levels or not recipients:
        return False
    send_email(
        template="low_stock",
        to=recipients,
        context={
            "products": [
                {
                    "product_id": level.product_id,
                    "sku": level.product.sku,
                    "name": level.product.name,
                    "on_hand": level.on_hand,
                    "reserved": level.reserved,
                    "available": level.available,
                    "low_stock_threshold": level.low_stock_threshold,
                }
                for level in levels
            ],
            "count": len(levels),
            "more": max(0, (total or len(product_ids)) - len(product_ids)),
        },
    )
    return True
