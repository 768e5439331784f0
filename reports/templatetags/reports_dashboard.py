"""`{% shop_dashboard %}`: the staff dashboard on the admin index (reports/dashboard.py)."""

from __future__ import annotations

from typing import Any

from django import template

from reports.dashboard import dashboard_context

register = template.Library()


@register.inclusion_tag("admin/reports/dashboard.html", takes_context=True)
def shop_dashboard(context: template.Context) -> dict[str, Any]:
    request = context.get("request")
    return dashboard_context(getattr(request, "user", None))
