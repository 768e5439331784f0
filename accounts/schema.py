"""OpenAPI: our JWT authentication class documented as the bearer scheme `jwtAuth`."""

from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme


class ShopJWTScheme(SimpleJWTScheme):  # type: ignore[no-untyped-call]
    target_class = "accounts.authentication.JWTAuthentication"
