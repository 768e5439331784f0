from django.urls import path
from rest_framework.routers import BaseRouter

from .views import PaymentMethodViewSet, PaymentViewSet, PaymentWebhookView

urlpatterns = [
    path(
        "payments/webhooks/<str:gateway>/",
        PaymentWebhookView.as_view(),
        name="payment-webhook",
    ),
]


def register(router: BaseRouter) -> None:
    """Register this app's viewsets on the one API router."""
    router.register("payment-methods", PaymentMethodViewSet, basename="payment-method")
    router.register("payments", PaymentViewSet, basename="payment")
