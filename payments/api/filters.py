from __future__ import annotations

import django_filters

from payments.models import Payment


class PaymentFilter(django_filters.FilterSet):  # type: ignore[misc]
    status = django_filters.ChoiceFilter(choices=Payment.Status.choices)
    kind = django_filters.ChoiceFilter(choices=Payment.Kind.choices)

    class Meta:
        model = Payment
        fields = ("status", "kind")
