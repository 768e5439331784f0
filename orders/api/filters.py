from __future__ import annotations

import datetime as dt
from typing import Any

import django_filters

from orders.models import Order


class UTCDateTimeFilter(django_filters.IsoDateTimeFilter):  # type: ignore[misc]
    """An ISO 8601 moment, compared in UTC.

    Any offset ISO 8601 allows (up to ±23:59) is a valid moment, while PostgreSQL refuses
    offsets past ±15:59 (a 400 `invalid` with no field named). In UTC every moment compares;
    one that falls outside the years 1-9999 once in UTC (`0001-01-01T00:00+05:00`) is before or
    after every order, so it is clamped to the first or last representable moment."""

    def filter(self, qs: Any, value: dt.datetime | None) -> Any:
        if value is not None and value.tzinfo is not None:
            try:
                value = value.astimezone(dt.UTC)
            except OverflowError:
                offset = value.utcoffset() or dt.timedelta()
                first = dt.datetime.min.replace(tzinfo=dt.UTC)
                value = first if offset > dt.timedelta() else dt.datetime.max.replace(tzinfo=dt.UTC)
        return super().filter(qs, value)


class OrderFilter(django_filters.FilterSet):  # type: ignore[misc]
    status = django_filters.ChoiceFilter(choices=Order.Status.choices)
    created_after = UTCDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = UTCDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = Order
        fields = ("status", "created_after", "created_before")
