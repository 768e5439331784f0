from rest_framework.routers import BaseRouter

urlpatterns: list[object] = []


def register(router: BaseRouter) -> None:
    """Register this app's viewsets on the one API router."""
