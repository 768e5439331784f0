from django.urls import path
from rest_framework.routers import BaseRouter

from . import views

# Each route is named after its path: `auth/password/reset/` is `auth-password-reset`.
_ROUTES = {
    "auth/register/": views.RegisterView,
    "auth/verify-email/": views.VerifyEmailView,
    "auth/verify-email/resend/": views.VerifyEmailResendView,
    "auth/token/": views.TokenObtainView,
    "auth/token/refresh/": views.TokenRefreshView,
    "auth/logout/": views.LogoutView,
    "auth/password/change/": views.PasswordChangeView,
    "auth/password/reset/": views.PasswordResetView,
    "auth/password/reset/confirm/": views.PasswordResetConfirmView,
    "users/me/": views.MeView,
}

urlpatterns = [
    path(route, view.as_view(), name=route.strip("/").replace("/", "-"))
    for route, view in _ROUTES.items()
]


def register(router: BaseRouter) -> None:
    """Register this app's viewsets on the one API router."""
    router.register("users", views.UserViewSet, basename="user")
