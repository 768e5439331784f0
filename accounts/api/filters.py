from __future__ import annotations

import django_filters

from ..models import User
from ..selectors import user_search


class UserFilter(django_filters.FilterSet):  # type: ignore[misc]
    role = django_filters.ChoiceFilter(choices=User.Role.choices)
    is_active = django_filters.BooleanFilter()
    email_verified = django_filters.BooleanFilter(
        field_name="email_verified_at", lookup_expr="isnull", exclude=True
    )
    search = django_filters.CharFilter(method="filter_search", label="Email or name contains")

    class Meta:
        model = User
        fields = ("role", "is_active", "email_verified", "search")

    def filter_search(self, queryset, name, value):  # type: ignore[no-untyped-def]
        return user_search(queryset, value)
