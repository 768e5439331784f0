"""Product images: validation, upload/patch/delete, renditions through the outbox, file removal,
the catalog's fields and query counts, /media/ serving, the admin inline, and S3 storage against a
local moto server.

Long on purpose: one feature end to end, from the upload to the CDN-ready read; its sections
follow the list above."""

from __future__ import annotations

import importlib
import io
import json
import os
import socket
import struct
import subprocess
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from PIL import ExifTags, Image, ImageCms

from accounts.models import User
from common.models import OutboxMessage
from conftest import client_for
from inventory import images as image_service
from inventory.images import IMAGE_MAX_BYTES, InvalidImage, image_clean, rendition_names
from inventory.models import Product, ProductImage
from inventory.services import product_create

pytestmark = pytest.mark.django_db

ORIENTATION = ExifTags.Base.Orientation
GPS_INFO = ExifTags.Base.GPSInfo


# --- building images ---------------------------------------------------------------------------


def picture(size: tuple[int, int] = (40, 30), mode: str = "RGB") -> Image.Image:
    """Left half red, right half blue (to see where a rotation put them)."""
    image = Image.new("RGB", size, "blue")
    image.paste("red", (0, 0, size[0] // 2, size[1]))
    return image if mode == "RGB" else image.convert(mode)


def encode(image: Image.Image, image_format: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=image_format, **options)
    return buffer.getvalue()


def jpeg(size: tuple[int, int] = (40, 30), **options: object) -> bytes:
    return encode(picture(size), "JPEG", **options)


def png_claiming(width: int, height: int) -> bytes:
    """A tiny, valid 1x1 PNG (made by Pillow) whose header then claims width x height pixels."""
    data = bytearray(encode(Image.new("L", (1, 1)), "PNG"))
    # Signature (8 bytes), then the IHDR chunk: length (4), type (4), width, height, … , CRC.
    assert data[12:16] == b"IHDR"
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def upload(content: bytes, name: str = "photo.jpg", content_type: str = "image/jpeg"):
    return SimpleUploadedFile(name, content, content_type=content_type)


def post_image(client, product, content: bytes | None = None, **fields):
    data = {"file": upload(content if content is not None else jpeg()), **fields}
    return client.post(f"/api/v1/products/{product.pk}/images/", data, format="multipart")


def stored_files(root: Path) -> list[str]:
    return sorted(str(path.relative_to(root)) for path in root.rglob("*") if path.is_file())


# --- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path: Path) -> Path:
    """Every test stores into its own directory, never into the repository's media/."""
    root = tmp_path / "media"
    settings.MEDIA_ROOT = root
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    }
    return root


@pytest.fixture
def shelf(make_product):
    """A product without stock, so it may be deleted."""
    return make_product(sku="SHELF-1", name="Oak Shelf")


# --- validation --------------------------------------------------------------------------------


def webp_with_alpha() -> bytes:
    return encode(picture(mode="RGBA"), "WEBP")


@pytest.mark.parametrize(
    ("content", "image_format", "size"),
    [
        (jpeg((40, 30)), "JPEG", (40, 30)),
        (encode(picture((30, 20), "RGBA"), "PNG"), "PNG", (30, 20)),
        (encode(picture((30, 20), "P"), "PNG", transparency=0), "PNG", (30, 20)),
        (encode(picture((25, 25), "RGBA"), "WEBP"), "WEBP", (25, 25)),
        (encode(picture((25, 25), "CMYK"), "JPEG"), "JPEG", (25, 25)),
    ],
)
def test_clean_accepts_jpeg_png_webp_by_content(content, image_format, size):
    cleaned = image_clean(io.BytesIO(content))
    assert (cleaned.format, cleaned.width, cleaned.height) == (image_format, *size)
    with Image.open(cleaned.content) as stored:
        assert stored.format == image_format
        assert stored.size == size


TEXT = b"name,price\nlamp,100\n" * 10
GIF = encode(picture(), "GIF")
TRUNCATED_JPEG = jpeg((400, 300), quality=95)[:3000]


@pytest.mark.parametrize(
    ("content", "name", "content_type", "detail"),
    [
        (TEXT, "photo.png", "image/png", "not a JPEG, PNG or WebP"),
        (GIF, "photo.jpg", "image/jpeg", "not a JPEG, PNG or WebP"),
        (encode(picture(), "BMP"), "photo.png", "image/png", "not a JPEG, PNG or WebP"),
        (TRUNCATED_JPEG, "photo.jpg", "image/jpeg", "truncated or corrupt"),
        (png_claiming(20_000, 20_000), "bomb.png", "image/png", "more than 40 megapixels"),
        # Over the limit but under twice it: Pillow only warns; the warning is a 400 as well.
        (png_claiming(8_000, 5_001), "big.png", "image/png", "more than 40 megapixels"),
        (b"", "empty.jpg", "image/jpeg", "empty"),
    ],
    ids=["text-named-png", "gif", "bmp", "truncated-jpeg", "bomb", "over-40-mp", "empty"],
)
def test_upload_refuses_what_is_not_a_valid_image(
    staff_client, shelf, media_root, content, name, content_type, detail
):
    response = staff_client.post(
        f"/api/v1/products/{shelf.pk}/images/",
        {"file": upload(content, name, content_type)},
        format="multipart",
    )
    assert response.status_code == 400, response.json()
    error = response.json()["errors"][0]
    assert (error["code"], error["attr"]) == ("invalid_image", "file")
    assert detail in error["detail"]
    assert response.json()["type"] == "client_error"
    assert not ProductImage.objects.exists()
    assert stored_files(media_root) == []
    assert not OutboxMessage.objects.exists()


def test_a_bomb_is_refused_from_its_header_before_decoding(monkeypatch):
    """20000x20000 would need 400 MB decoded: the header alone refuses it; load() never runs."""
    bomb = png_claiming(20_000, 20_000)
    loaded: list[object] = []
    monkeypatch.setattr(Image.Image, "load", lambda self: loaded.append(self))
    with pytest.raises(InvalidImage, match="40 megapixels"):
        image_clean(io.BytesIO(bomb))
    assert loaded == []


def test_exactly_40_megapixels_passes_the_header_check():
    # 8000 x 5000 = 40,000,000: allowed (decoding a 1x1 body then fails as truncated, not big).
    with pytest.raises(InvalidImage, match="truncated or corrupt"):
        image_clean(io.BytesIO(png_claiming(8_000, 5_000)))


def test_an_11_mb_upload_is_refused(staff_client, shelf, media_root):
    big = jpeg() + b"\0" * (11 * 1024 * 1024)
    response = post_image(staff_client, shelf, big)
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "invalid_image"
    assert "larger than 10 MB" in response.json()["errors"][0]["detail"]
    assert stored_files(media_root) == []


def test_uploads_over_the_body_limit_stream_to_a_temporary_file(staff_client, shelf, monkeypatch):
    """The 2.5 MB body limit is for JSON and form fields: a larger image is accepted, and Django
    writes it to a temporary file (FILE_UPLOAD_MAX_MEMORY_SIZE) instead of holding it in memory."""
    noise = Image.frombytes("RGB", (1100, 1000), os.urandom(1100 * 1000 * 3))
    content = encode(noise, "PNG")
    assert 2_621_440 < len(content) < IMAGE_MAX_BYTES
    seen: list[str] = []
    real_clean = image_service.image_clean

    def recording_clean(upload):
        seen.append(type(upload).__name__)
        return real_clean(upload)

    monkeypatch.setattr(image_service, "image_clean", recording_clean)
    response = post_image(staff_client, shelf, content)
    assert response.status_code == 201, response.json()
    assert seen == ["TemporaryUploadedFile"]


def test_the_service_checks_the_size_too():
    with pytest.raises(InvalidImage, match="larger than 10 MB"):
        image_clean(io.BytesIO(b"\xff" * (IMAGE_MAX_BYTES + 1)))


def test_upload_without_a_file_is_invalid_image(staff_client, shelf):
    response = staff_client.post(
        f"/api/v1/products/{shelf.pk}/images/", {"alt": "x"}, format="multipart"
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "invalid_image"


def test_upload_as_json_is_unsupported_media_type(staff_client, shelf):
    response = staff_client.post(f"/api/v1/products/{shelf.pk}/images/", {"file": "x"})
    assert response.status_code == 415


def gps_exif(orientation: int) -> Image.Exif:
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    exif[ExifTags.Base.Make] = "PhoneCo"
    exif[GPS_INFO] = {
        ExifTags.GPS.GPSLatitudeRef: "N",
        ExifTags.GPS.GPSLatitude: (52.0, 31.0, 12.0),
        ExifTags.GPS.GPSLongitudeRef: "E",
        ExifTags.GPS.GPSLongitude: (13.0, 24.0, 36.0),
    }
    return exif


@pytest.mark.parametrize("image_format", ["JPEG", "PNG", "WEBP"])
def test_exif_with_gps_is_stripped_and_orientation_applied(
    staff_client, shelf, media_root, image_format
):
    # 40 wide x 20 high, red left / blue right, "rotate 90° clockwise to display" (6).
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    content = encode(picture((40, 20)), image_format, exif=gps_exif(6).tobytes(), icc_profile=srgb)
    with Image.open(io.BytesIO(content)) as source:  # the sample really carries GPS
        assert source.getexif().get_ifd(GPS_INFO)[ExifTags.GPS.GPSLatitudeRef] == "N"
    response = post_image(staff_client, shelf, content)
    assert response.status_code == 201, response.json()
    assert (response.json()["width"], response.json()["height"]) == (20, 40)
    image = ProductImage.objects.get()
    raw = (media_root / image.file.name).read_bytes()
    assert b"PhoneCo" not in raw
    assert b"Exif" not in raw
    with Image.open(media_root / image.file.name) as stored:
        assert stored.format == image_format
        assert stored.size == (20, 40)
        assert not stored.getexif()
        assert "exif" not in stored.info
        assert stored.info["icc_profile"] == srgb  # colours are kept
        rgb = stored.convert("RGB")
        red, blue = rgb.getpixel((10, 5)), rgb.getpixel((10, 35))
    # Rotated clockwise: the left (red) half is now on top.
    assert red[0] > 200, red  # type: ignore[index]
    assert red[2] < 60, red  # type: ignore[index]
    assert blue[2] > 200, blue  # type: ignore[index]
    assert blue[0] < 60, blue  # type: ignore[index]


# --- upload, patch, delete ---------------------------------------------------------------------


def test_staff_uploads_an_image(staff_client, shelf, media_root):
    response = post_image(staff_client, shelf, jpeg((64, 48)), alt="Front view")
    assert response.status_code == 201, response.json()
    image = ProductImage.objects.get()
    assert image.file.name is not None
    body = response.json()
    assert body == {
        "id": image.pk,
        "url": f"/media/{image.file.name}",
        "thumbnail_url": f"/media/{image.file.name}",  # the original, until the rendition
        "alt": "Front view",
        "position": 0,
        "width": 64,
        "height": 48,
    }
    assert image.file.name.startswith(f"products/{shelf.pk}/")
    assert image.file.name.endswith(".jpg")
    assert (image.thumbnail.name, image.medium.name) == ("", "")
    assert stored_files(media_root) == [image.file.name]
    # The renditions wait in the outbox (queued in the same transaction).
    message = OutboxMessage.objects.get()
    assert (message.task, message.kwargs) == (
        "inventory.tasks.make_image_renditions",
        {"image_id": image.pk},
    )


def test_file_names_are_unique_per_upload(staff_client, shelf):
    content = jpeg()
    first = post_image(staff_client, shelf, content).json()
    second = post_image(staff_client, shelf, content).json()
    assert first["url"] != second["url"]
    assert [first["position"], second["position"]] == [0, 1]


def test_renditions_are_made_after_commit(
    staff_client, shelf, media_root, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = post_image(staff_client, shelf, jpeg((2000, 1500)))
    assert response.status_code == 201
    image = ProductImage.objects.get()
    assert image.file.name is not None
    names = rendition_names(image.file.name)
    assert (image.thumbnail.name, image.medium.name) == (names["thumbnail"], names["medium"])
    assert stored_files(media_root) == sorted([image.file.name, *names.values()])
    with Image.open(media_root / image.thumbnail.name) as thumbnail:
        assert (thumbnail.format, thumbnail.size) == ("WEBP", (320, 240))
    with Image.open(media_root / image.medium.name) as medium:
        assert (medium.format, medium.size) == ("WEBP", (1024, 768))
    assert OutboxMessage.objects.get().done_at is not None
    detail = staff_client.get(f"/api/v1/products/{shelf.pk}/").json()
    assert detail["images"] == [
        {
            "id": image.pk,
            "url": f"/media/{image.file.name}",
            "thumbnail_url": f"/media/{image.thumbnail.name}",
            "alt": "",
            "position": 0,
            "width": 2000,
            "height": 1500,
        }
    ]
    assert detail["image"] == f"/media/{image.thumbnail.name}"


def test_renditions_run_from_the_outbox_relay(staff_client, shelf, media_root, run_outbox):
    translucent = picture((500, 400), "RGBA")
    translucent.putalpha(128)
    post_image(staff_client, shelf, encode(translucent, "PNG"))
    image = ProductImage.objects.get()
    assert image.thumbnail.name == ""
    assert run_outbox() == 1
    image.refresh_from_db()
    with Image.open(media_root / image.thumbnail.name) as thumbnail:
        assert (thumbnail.format, thumbnail.mode, thumbnail.size) == ("WEBP", "RGBA", (320, 256))
    # Idempotent: a second delivery changes nothing.
    assert image_service.image_renditions_make(image_id=image.pk) is False
    assert image_service.image_renditions_make(image_id=10**9) is False


def test_renditions_of_an_image_deleted_meanwhile_are_removed(
    staff_client, shelf, media_root, monkeypatch
):
    post_image(staff_client, shelf)
    image = ProductImage.objects.get()
    real_rendition = image_service._rendition

    def rendition_while_deleted(picture: Image.Image, edge: int) -> bytes:
        ProductImage.objects.filter(pk=image.pk).delete()  # another request, mid-task
        return real_rendition(picture, edge)

    monkeypatch.setattr(image_service, "_rendition", rendition_while_deleted)
    assert image_service.image_renditions_make(image_id=image.pk) is False
    # Only the original is left, for the deletion's own (queued) removal.
    assert stored_files(media_root) == [image.file.name]


def test_a_failed_insert_removes_the_stored_file(staff_client, shelf, media_root, monkeypatch):
    def fail(**kwargs: object) -> int:
        raise RuntimeError("database trouble")

    monkeypatch.setattr(image_service, "_place", fail)
    with pytest.raises(RuntimeError):
        image_service.product_image_create(product=shelf, upload=io.BytesIO(jpeg()))
    assert stored_files(media_root) == []
    assert not ProductImage.objects.exists()


def test_customers_and_anonymous_cannot_change_images(
    api_client, customer_client, staff_client, shelf
):
    image_id = post_image(staff_client, shelf).json()["id"]
    url = f"/api/v1/products/{shelf.pk}/images/"
    detail = f"{url}{image_id}/"
    assert post_image(customer_client, shelf).status_code == 403
    assert customer_client.patch(detail, {"alt": "x"}).status_code == 403
    assert customer_client.delete(detail).status_code == 403
    assert post_image(api_client, shelf).status_code == 401
    assert api_client.delete(detail).status_code == 401
    assert ProductImage.objects.count() == 1


def test_unknown_product_or_image_is_404(staff_client, shelf, make_product):
    other = make_product(sku="OTHER-1")
    image_id = post_image(staff_client, shelf).json()["id"]
    assert post_image(staff_client, type(shelf)(pk=10**9)).status_code == 404
    assert staff_client.delete(f"/api/v1/products/{other.pk}/images/{image_id}/").status_code == 404
    response = staff_client.patch(f"/api/v1/products/{shelf.pk}/images/999999/", {"alt": "x"})
    assert response.status_code == 404


def positions(product) -> list[tuple[int, str]]:
    return list(
        ProductImage.objects.filter(product=product)
        .order_by("position", "id")
        .values_list("position", "alt")
    )


def test_positions_insert_move_and_close_gaps(staff_client, shelf):
    for alt in ("a", "b", "c"):
        post_image(staff_client, shelf, alt=alt)
    assert positions(shelf) == [(0, "a"), (1, "b"), (2, "c")]
    response = post_image(staff_client, shelf, alt="first", position=0)
    assert response.json()["position"] == 0
    assert positions(shelf) == [(0, "first"), (1, "a"), (2, "b"), (3, "c")]
    c = ProductImage.objects.get(alt="c")
    url = f"/api/v1/products/{shelf.pk}/images/{c.pk}/"
    response = staff_client.patch(url, {"position": 1, "alt": "now second"})
    assert response.status_code == 200
    assert (response.json()["position"], response.json()["alt"]) == (1, "now second")
    assert positions(shelf) == [(0, "first"), (1, "now second"), (2, "a"), (3, "b")]
    response = staff_client.patch(url, {"position": 99})  # past the end: last
    assert response.json()["position"] == 3
    assert staff_client.patch(url, {"position": -1}).status_code == 400
    a = ProductImage.objects.get(alt="a")
    assert staff_client.delete(f"/api/v1/products/{shelf.pk}/images/{a.pk}/").status_code == 204
    assert positions(shelf) == [(0, "first"), (1, "b"), (2, "now second")]


def test_the_lists_primary_image_follows_moves_deletes_and_renditions(
    api_client, staff_client, shelf, django_capture_on_commit_callbacks, settings
):
    """The list reads `Product.primary_image` (a column, not a subquery): every change that can
    change the primary keeps it in step."""
    settings.CATALOG_CACHE_SECONDS = 0  # the list as the database has it, at every step

    def listed() -> str | None:
        image: str | None = api_client.get("/api/v1/products/?sku=SHELF-1").json()["results"][0][
            "image"
        ]
        return image

    first = post_image(staff_client, shelf, alt="first").json()
    second = post_image(staff_client, shelf, alt="second").json()
    assert listed() == first["thumbnail_url"]  # the original until its thumbnail exists
    url = f"/api/v1/products/{shelf.pk}/images/{second['id']}/"
    assert staff_client.patch(url, {"position": 0}).status_code == 200
    assert listed() == second["url"]
    with django_capture_on_commit_callbacks(execute=True):
        image_service.image_renditions_make(image_id=second["id"])
    thumbnail = ProductImage.objects.get(pk=second["id"]).thumbnail.name
    assert listed() == f"/media/{thumbnail}"
    assert staff_client.delete(url).status_code == 204
    assert listed() == first["url"]
    assert staff_client.delete(f"/api/v1/products/{shelf.pk}/images/{first['id']}/").status_code
    assert listed() is None
    assert Product.objects.get(pk=shelf.pk).primary_image == ""


def test_catalog_shows_the_primary_image(api_client, staff_client, shelf, make_product):
    bare = make_product(sku="BARE-1")
    post_image(staff_client, shelf, alt="second")
    primary = post_image(staff_client, shelf, alt="first", position=0).json()
    results = {p["sku"]: p for p in api_client.get("/api/v1/products/").json()["results"]}
    assert results["SHELF-1"]["image"] == primary["thumbnail_url"]
    assert results["BARE-1"]["image"] is None
    assert "images" not in results["SHELF-1"]
    detail = api_client.get(f"/api/v1/products/{shelf.pk}/").json()
    assert [image["alt"] for image in detail["images"]] == ["first", "second"]
    assert api_client.get(f"/api/v1/products/{bare.pk}/").json()["images"] == []
    keys = list(detail)
    assert keys[keys.index("metadata") + 1 : keys.index("is_active")] == ["images", "image"]


def test_an_image_change_refreshes_cached_catalog_reads(
    api_client, staff_client, shelf, django_capture_on_commit_callbacks
):
    assert api_client.get(f"/api/v1/products/{shelf.pk}/").json()["images"] == []  # cached
    with django_capture_on_commit_callbacks(execute=True):
        post_image(staff_client, shelf)
    assert len(api_client.get(f"/api/v1/products/{shelf.pk}/").json()["images"]) == 1


# --- deletion removes files --------------------------------------------------------------------


def test_deleting_an_image_removes_its_files_after_commit(
    staff_client, shelf, media_root, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        image_id = post_image(staff_client, shelf).json()["id"]
    assert len(stored_files(media_root)) == 3  # original, medium, thumbnail
    url = f"/api/v1/products/{shelf.pk}/images/{image_id}/"
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert staff_client.delete(url).status_code == 204
    assert len(stored_files(media_root)) == 3  # not before the commit
    for callback in callbacks:
        callback()
    assert stored_files(media_root) == []
    assert not ProductImage.objects.exists()


def test_deleting_a_product_removes_its_images_files(
    staff_client, shelf, media_root, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        post_image(staff_client, shelf)
        post_image(staff_client, shelf, encode(picture(), "PNG"))
    assert len(stored_files(media_root)) == 6
    with django_capture_on_commit_callbacks(execute=True):
        assert staff_client.delete(f"/api/v1/products/{shelf.pk}/").status_code == 204
    assert stored_files(media_root) == []


def test_a_rolled_back_deletion_keeps_the_files(staff_client, shelf, media_root):
    from django.db import transaction

    post_image(staff_client, shelf)
    image = ProductImage.objects.get()
    image_id, name = image.pk, image.file.name

    def delete_then_fail() -> None:
        with transaction.atomic():
            image_service.product_image_delete(image=image)
            raise RuntimeError

    with pytest.raises(RuntimeError):
        delete_then_fail()
    assert ProductImage.objects.filter(pk=image_id).exists()
    assert stored_files(media_root) == [name]
    assert OutboxMessage.objects.filter(task="inventory.tasks.delete_image_files").count() == 0


# --- the list's fixed query count ---------------------------------------------------------------


@pytest.mark.parametrize(("who", "queries"), [("anonymous", 2), ("staff", 3)])
def test_list_query_count_is_fixed_with_images(
    api_client, make_user, staff_client, category, who, queries, django_assert_num_queries
):
    for number in range(6):
        product = product_create(
            sku=f"IMG-{number}", name=f"Lamp {number}", category=category, price_cents=100
        )
        for _ in range(2):
            post_image(staff_client, product)
    client = api_client if who == "anonymous" else client_for(make_user(User.Role.STAFF))
    with django_assert_num_queries(queries):
        response = client.get("/api/v1/products/?page_size=50")
    assert [item["image"] is not None for item in response.json()["results"]] == [True] * 6


def test_detail_is_one_query_with_images(
    api_client, staff_client, shelf, django_assert_num_queries
):
    for _ in range(3):
        post_image(staff_client, shelf)
    with django_assert_num_queries(1):
        response = api_client.get(f"/api/v1/products/{shelf.pk}/")
    assert len(response.json()["images"]) == 3


# --- /media/ -----------------------------------------------------------------------------------


def test_media_is_served_with_long_cache_headers(staff_client, shelf, media_root):
    body = post_image(staff_client, shelf).json()
    response = Client().get(body["url"])
    assert response.status_code == 200
    assert response["Cache-Control"] == "public, max-age=31536000, immutable"
    assert response["Content-Type"] == "image/jpeg"
    image = ProductImage.objects.get()
    assert response.getvalue() == (media_root / image.file.name).read_bytes()


@pytest.mark.parametrize("path", ["/media/products/1/missing.jpg", "/media/../settings.py"])
def test_media_answers_404_for_anything_else(path):
    response = Client().get(path)
    assert response.status_code in (400, 404)  # a path out of MEDIA_ROOT is a 400
    assert "Cache-Control" not in response


# --- admin inline ------------------------------------------------------------------------------


@pytest.fixture
def admin_browser(admin_user):
    client = Client()
    client.force_login(admin_user)
    return client


def product_form(product, **images):
    data = {
        "sku": product.sku,
        "name": product.name,
        "description": "",
        "category": product.category_id,
        "price_cents": str(product.price_cents),
        "currency": "USD",
        "metadata": "{}",
        "is_active": "on",
        "low_stock_threshold": "0",
        "images-TOTAL_FORMS": "1",
        "images-INITIAL_FORMS": "0",
        "images-MIN_NUM_FORMS": "0",
        "images-MAX_NUM_FORMS": "1000",
    }
    data.update(images)
    return data


def test_admin_inline_uploads_through_the_service(
    admin_browser, shelf, media_root, django_capture_on_commit_callbacks
):
    url = f"/admin/inventory/product/{shelf.pk}/change/"
    assert admin_browser.get(url).status_code == 200
    content = jpeg((800, 600), exif=gps_exif(1).tobytes())
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_browser.post(
            url,
            product_form(
                shelf, **{"images-0-file": upload(content), "images-0-alt": "From the admin"}
            ),
        )
    assert response.status_code == 302, response.content.decode()[:2000]
    image = ProductImage.objects.get()
    assert (image.alt, image.position, image.width, image.height) == ("From the admin", 0, 800, 600)
    assert b"Exif" not in (media_root / image.file.name).read_bytes()
    assert image.thumbnail.name  # renditions made after the commit
    page = admin_browser.get(url).content.decode()
    assert f"/media/{image.thumbnail.name}" in page
    # Change the alt text and then delete it, through the same inline.
    existing = {
        "images-TOTAL_FORMS": "1",
        "images-INITIAL_FORMS": "1",
        "images-0-id": str(image.pk),
        "images-0-product": str(shelf.pk),
        "images-0-alt": "Renamed",
        "images-0-position": "0",
    }
    assert admin_browser.post(url, product_form(shelf, **existing)).status_code == 302
    image.refresh_from_db()
    assert image.alt == "Renamed"
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_browser.post(
            url, product_form(shelf, **existing, **{"images-0-DELETE": "on"})
        )
    assert response.status_code == 302
    assert not ProductImage.objects.exists()
    assert stored_files(media_root) == []


def test_admin_inline_refuses_a_gif(admin_browser, shelf, media_root):
    url = f"/admin/inventory/product/{shelf.pk}/change/"
    response = admin_browser.post(
        url, product_form(shelf, **{"images-0-file": upload(GIF, "x.gif", "image/gif")})
    )
    assert response.status_code == 200
    assert "not a JPEG, PNG or WebP" in response.content.decode()
    assert not ProductImage.objects.exists()
    assert stored_files(media_root) == []


# --- S3 storage, against a local moto server ---------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """An S3-compatible server on 127.0.0.1 (moto's server mode), for the whole run."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=_free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


BUCKET = "shop-images"
S3_OPTIONS = {
    "bucket_name": BUCKET,
    "region_name": "us-east-1",
    "access_key": "testing",
    "secret_key": "testing",
    "addressing_style": "path",  # as MinIO needs
    "querystring_auth": False,
    "file_overwrite": True,
    "object_parameters": {"CacheControl": "public, max-age=31536000, immutable"},
}


@pytest.fixture
def s3(settings, s3_endpoint):
    boto3 = importlib.import_module("boto3")  # no type stubs; `Any` is enough here
    client = boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    client.create_bucket(Bucket=BUCKET)
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {**S3_OPTIONS, "endpoint_url": s3_endpoint},
        },
    }
    yield client
    for item in client.list_objects_v2(Bucket=BUCKET).get("Contents", []):
        client.delete_object(Bucket=BUCKET, Key=item["Key"])
    client.delete_bucket(Bucket=BUCKET)


def bucket_keys(client) -> list[str]:
    return sorted(item["Key"] for item in client.list_objects_v2(Bucket=BUCKET).get("Contents", []))


def test_s3_upload_renditions_and_delete(
    s3, s3_endpoint, staff_client, shelf, media_root, django_capture_on_commit_callbacks
):
    content = encode(picture((1200, 900)), "PNG")
    with django_capture_on_commit_callbacks(execute=True):
        response = post_image(staff_client, shelf, content, alt="In the bucket")
    assert response.status_code == 201, response.json()
    image = ProductImage.objects.get()
    assert image.file.name is not None
    names = rendition_names(image.file.name)
    assert bucket_keys(s3) == sorted([image.file.name, *names.values()])
    original = s3.get_object(Bucket=BUCKET, Key=image.file.name)
    assert original["ContentType"] == "image/png"
    assert original["CacheControl"] == "public, max-age=31536000, immutable"
    with Image.open(io.BytesIO(original["Body"].read())) as stored:
        assert (stored.format, stored.size) == ("PNG", (1200, 900))
    thumbnail = s3.get_object(Bucket=BUCKET, Key=names["thumbnail"])
    assert thumbnail["ContentType"] == "image/webp"
    with Image.open(io.BytesIO(thumbnail["Body"].read())) as small:
        assert small.size == (320, 240)
    assert stored_files(media_root) == []  # nothing on the local disk
    detail = staff_client.get(f"/api/v1/products/{shelf.pk}/").json()
    assert detail["images"][0]["url"] == f"{s3_endpoint}/{BUCKET}/{image.file.name}"
    assert detail["images"][0]["thumbnail_url"] == f"{s3_endpoint}/{BUCKET}/{names['thumbnail']}"
    assert "Signature" not in detail["image"]
    with django_capture_on_commit_callbacks(execute=True):
        url = f"/api/v1/products/{shelf.pk}/images/{image.pk}/"
        assert staff_client.delete(url).status_code == 204
    assert bucket_keys(s3) == []


def test_s3_product_delete_removes_objects(
    s3, staff_client, shelf, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        post_image(staff_client, shelf)
    assert len(bucket_keys(s3)) == 3
    with django_capture_on_commit_callbacks(execute=True):
        assert staff_client.delete(f"/api/v1/products/{shelf.pk}/").status_code == 204
    assert bucket_keys(s3) == []


STORAGE_PROBE = """
import json
import environ
environ.Env.read_env = classmethod(lambda cls, *args, **kwargs: None)
from django.conf import settings
print(json.dumps({"default": settings.STORAGES["default"], "media_url": settings.MEDIA_URL}))
"""


def storage_settings(**variables: str) -> dict[str, Any]:
    """What config/settings.py makes of these variables alone (a fresh interpreter; no .env)."""
    env = {
        "PATH": os.environ["PATH"],
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "SECRET_KEY": "only-for-this-probe",
        **variables,
    }
    result = subprocess.run(
        [sys.executable, "-c", STORAGE_PROBE],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def test_settings_use_the_filesystem_unless_a_bucket_is_named():
    assert storage_settings() == {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "media_url": "/media/",
    }
    s3 = storage_settings(
        AWS_STORAGE_BUCKET_NAME="my-bucket",
        AWS_S3_ENDPOINT_URL="http://127.0.0.1:9000",
        AWS_S3_CUSTOM_DOMAIN="cdn.example.com",
        AWS_S3_REGION_NAME="",  # empty counts as unset
        AWS_S3_ADDRESSING_STYLE="path",
    )["default"]
    assert s3["BACKEND"] == "storages.backends.s3.S3Storage"
    assert s3["OPTIONS"] == {
        "bucket_name": "my-bucket",
        "endpoint_url": "http://127.0.0.1:9000",
        "region_name": None,
        "custom_domain": "cdn.example.com",
        "addressing_style": "path",
        "querystring_auth": False,
        "file_overwrite": True,
        "object_parameters": {"CacheControl": "public, max-age=31536000, immutable"},
    }
