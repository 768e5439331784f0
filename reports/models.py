"""The daily rollup: each finished day's sales figures, so a long report reads a few hundred rows
instead of every payment of the range.

Written only by `reports.services.rollup_days` (the nightly task and `manage.py rollup_reports`),
from the same SQL the live reports run, so a day read from here and the same day computed live
agree exactly. A `DailySales` row is also the day's manifest: a day counts as rolled up when it
has one (in the current `TIME_ZONE`), and its `DailyProductSales` rows, written in the same
transaction, are then complete, even when there are none (a day without sales).
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q


class DailySales(models.Model):
    """One finished day in the store's time zone: orders paid that day, their units, and the
    money charged and refunded that day."""

    day = models.DateField(unique=True)
    time_zone = models.CharField(
        max_length=64,
        help_text="The TIME_ZONE the day was cut in; rows of another zone are ignored (recomputed "
        "live) until the rollup rewrites them.",
    )
    orders = models.PositiveIntegerField()
    items_sold = models.PositiveBigIntegerField()
    revenue_cents = models.BigIntegerField()
    refunded_cents = models.BigIntegerField()
    computed_at = models.DateTimeField()

    class Meta:
        ordering = ("day",)
        verbose_name = "daily sales"
        verbose_name_plural = "daily sales"
        constraints = [
            models.CheckConstraint(
                condition=Q(revenue_cents__gte=0, refunded_cents__gte=0),
                name="reports_dailysales_money_gte_0",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.day}: {self.orders} orders, {self.revenue_cents} cents"


class DailyProductSales(models.Model):
    """Units and line revenue of one product in the orders paid on one finished day (top-products
    over long ranges)."""

    day = models.DateField()
    product = models.ForeignKey("inventory.Product", on_delete=models.PROTECT, related_name="+")
    quantity = models.PositiveBigIntegerField()
    revenue_cents = models.BigIntegerField()

    class Meta:
        ordering = ("day", "product_id")
        verbose_name = "daily product sales"
        verbose_name_plural = "daily product sales"
        constraints = [
            models.UniqueConstraint(fields=["day", "product"], name="reports_dailyproduct_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.day}: product {self.product_id} x {self.quantity}"
