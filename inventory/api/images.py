"""Product images: staff upload (multipart), reorder, describe and delete.

`POST products/{id}/images/` takes `multipart/form-data` (the rest of the API is JSON only). Files
are exempt from the 2.5 MB body limit, which Django applies to form fields only; an upload over
`FILE_UPLOAD_MAX_MEMORY_SIZE` is streamed to a temporary file, and a body whose Content-Length is
over the image limit is refused before it is read.

`PATCH` takes JSON, or the same form as the upload. A form's values are strings by nature, read
as their fields' types (`position=2`); a JSON body's values must be of the JSON type the schema
documents (`JSONInputSerializer`: `"alt": 0` is a 400).
"""

from __future__ import annotations

from typing import Any

from django.core.files.uploadedfile import UploadedFile
from django.http import QueryDict
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import IsStaff
from common.exceptions import INTEGER_MAX
from common.openapi import domain_error_responses
from common.parsers import JSONInputSerializer, JSONParser

from ..images import (
    IMAGE_MAX_BYTES,
    InvalidImage,
    product_image_create,
    product_image_delete,
    product_image_dict,
    product_image_update,
)
from ..models import Product, ProductImage
from .serializers import ProductImageOutputSerializer

# Room for the multipart framing and the `alt` and `position` fields around the file.
MULTIPART_OVERHEAD_BYTES = 64 * 1024


class ProductImageFieldsInputSerializer(serializers.Serializer[dict[str, Any]]):
    alt = serializers.CharField(max_length=255, required=False, allow_blank=True, default="")
    position = serializers.IntegerField(
        min_value=0, max_value=INTEGER_MAX, required=False, help_text="Default: after the others"
    )


class ProductImageUploadInputSerializer(ProductImageFieldsInputSerializer):
    """A multipart form. The file must be a JPEG, PNG or WebP (judged by its content), at most
    10 MB and 40 megapixels; its EXIF data is removed and its orientation applied."""

    file = serializers.FileField(help_text="JPEG, PNG or WebP; at most 10 MB and 40 megapixels")


class ProductImageUpdateFormSerializer(serializers.Serializer[dict[str, Any]]):
    """A multipart form: every value a string, read as its field's type."""

    alt = serializers.CharField(max_length=255, required=False, allow_blank=True)
    position = serializers.IntegerField(min_value=0, max_value=INTEGER_MAX, required=False)


class ProductImageUpdateInputSerializer(JSONInputSerializer, ProductImageUpdateFormSerializer):
    """The same fields in a JSON body, each value in its documented JSON type."""


def _content_length(request: Request) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


class ProductImageListView(APIView):
    """Upload an image of a product (staff)."""

    permission_classes = [IsStaff]
    parser_classes = [MultiPartParser]

    @extend_schema(
        request={"multipart/form-data": ProductImageUploadInputSerializer},
        responses={201: ProductImageOutputSerializer, **domain_error_responses(InvalidImage)},
    )
    def post(self, request: Request, product_id: int) -> Response:
        product = get_object_or_404(Product, pk=product_id)
        if _content_length(request) > IMAGE_MAX_BYTES + MULTIPART_OVERHEAD_BYTES:
            raise InvalidImage(f"The file is larger than {IMAGE_MAX_BYTES // (1024 * 1024)} MB.")
        upload = request.FILES.get("file")
        if not isinstance(upload, UploadedFile):
            raise InvalidImage("Send the image as the multipart field `file`.")
        data = ProductImageFieldsInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        image = product_image_create(
            product=product,
            upload=upload,
            alt=data.validated_data["alt"],
            position=data.validated_data.get("position"),
        )
        return Response(product_image_dict(image), status=status.HTTP_201_CREATED)


class ProductImageDetailView(APIView):
    """Change an image's alt text or position, or delete it (staff)."""

    permission_classes = [IsStaff]
    parser_classes = [JSONParser, MultiPartParser]

    def _image(self, product_id: int, image_id: int) -> ProductImage:
        return get_object_or_404(ProductImage, pk=image_id, product_id=product_id)

    @extend_schema(
        request={
            "application/json": ProductImageUpdateInputSerializer,
            "multipart/form-data": ProductImageUpdateFormSerializer,
        },
        responses=ProductImageOutputSerializer,
    )
    def patch(self, request: Request, product_id: int, image_id: int) -> Response:
        image = self._image(product_id, image_id)
        # The multipart parser gives a QueryDict (a form); the JSON parser what the JSON holds.
        form = isinstance(request.data, QueryDict)
        serializer = ProductImageUpdateFormSerializer if form else ProductImageUpdateInputSerializer
        data = serializer(data=request.data)
        data.is_valid(raise_exception=True)
        image = product_image_update(image=image, **data.validated_data)
        return Response(product_image_dict(image))

    @extend_schema(responses={204: OpenApiResponse(description="Deleted")})
    def delete(self, request: Request, product_id: int, image_id: int) -> Response:
        product_image_delete(image=self._image(product_id, image_id))
        return Response(status=status.HTTP_204_NO_CONTENT)
