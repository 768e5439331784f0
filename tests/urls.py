"""The real URLconf plus a few views that raise each kind of error, for the error-shape tests."""

from typing import Any

from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.generics import GenericAPIView
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import IsStaff
from common.exceptions import ErrorItem, ProtectedError
from common.openapi import domain_error_responses
from config.urls import handler400, handler403, handler404, handler500
from config.urls import urlpatterns as real

__all__ = ["handler400", "handler403", "handler404", "handler500", "urlpatterns"]


class _EchoSerializer(serializers.Serializer[dict[str, object]]):
    quantity = serializers.IntegerField(min_value=1)


class ValidatingView(GenericAPIView[Any]):
    permission_classes = [AllowAny]
    serializer_class = _EchoSerializer

    def get(self, request: Request) -> Response:
        return Response({"ok": True})

    def post(self, request: Request) -> Response:
        serializer = _EchoSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return Response(serializer.validated_data)


class StaffOnlyView(GenericAPIView[Any]):
    permission_classes = [IsStaff]
    serializer_class = _EchoSerializer

    def get(self, request: Request) -> Response:
        return Response({"ok": True})


class DomainErrorView(APIView):
    permission_classes = [AllowAny]

    @extend_schema(responses={200: None, **domain_error_responses(ProtectedError)})
    def get(self, request: Request) -> Response:
        raise ProtectedError(items=[ErrorItem("Still used by order 7.", attr="product")])


class CrashView(APIView):
    permission_classes = [AllowAny]

    @extend_schema(responses={200: None})
    def get(self, request: Request) -> Response:
        raise RuntimeError("boom: a bug")


urlpatterns = [
    path("api/v1/_test/validate/", ValidatingView.as_view()),
    path("api/v1/_test/staff/", StaffOnlyView.as_view()),
    path("api/v1/_test/domain/", DomainErrorView.as_view()),
    path("api/v1/_test/crash/", CrashView.as_view()),
    *real,
]
