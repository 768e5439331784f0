"""Product images: validation with Pillow, storage, ordering, renditions and file removal.

Nothing reaches storage before `image_clean` accepted it:

- the format is read from the content (JPEG, PNG or WebP), never from the name or the declared
  type; anything else, a GIF or a text file named `.png`, is `invalid_image`;
- at most `IMAGE_MAX_BYTES` (10 MB) and `IMAGE_MAX_PIXELS` (40 megapixels). The pixel count comes
  from the header (`Image.open` reads nothing else) and is checked before `load()` decodes
  anything, so a decompression bomb (a small file that claims 20000x20000) is a 400, never a
  memory spike; Pillow's own guard (`Image.MAX_IMAGE_PIXELS`, set to the same limit) turns into
  the same 400;
- a truncated or corrupt file fails while decoding: a 400 too;
- the EXIF orientation is applied (`ImageOps.exif_transpose`) and the image is re-encoded without
  EXIF, XMP or text chunks (no GPS position leaks); only the ICC profile and PNG transparency
  are kept.

The cleaned original is stored under a new unique name (`products/<id>/<uuid>.<ext>`): content
under a name never changes, so its URL can be cached forever. A WebP thumbnail (320 px) and a
medium size (1024 px) are made after the commit by `inventory.tasks.make_image_renditions` (the
outbox, bulk queue); until then the original serves as the thumbnail. Files are removed after a
deletion commits, through the outbox too (`inventory.tasks.delete_image_files`), whatever deleted
the row: this service, the admin, or a product's deletion cascading to its images.
"""

from __future__ import annotations

import io
import logging
import tempfile
import uuid
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import IO, Any

from django.core.files import File
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import CharField, OuterRef, Subquery, Value
from django.db.models.functions import Coalesce, NullIf
from PIL import Image, ImageOps
from rest_framework import status

from common.exceptions import DomainError, ErrorItem
from common.outbox import enqueue_after_commit

from .cache import catalog_changed
from .models import Product, ProductImage

logger = logging.getLogger(__name__)

IMAGE_MAX_BYTES = 10 * 1024 * 1024
IMAGE_MAX_PIXELS = 40_000_000
# Pillow warns above this many pixels and refuses above twice as many, in every Image.open of the
# process; `image_clean` turns both into `invalid_image` (and checks the exact limit itself).
Image.MAX_IMAGE_PIXELS = IMAGE_MAX_PIXELS

THUMBNAIL_EDGE = 320
MEDIUM_EDGE = 1024
RENDITION_QUALITY = 80
ORIGINAL_QUALITY = 90
# A cleaned original larger than this is spooled to a temporary file, not kept in memory.
SPOOL_MAX_BYTES = 2_621_440

# Pillow format → file extension (which also gives the stored object its content type).
FORMATS: dict[str, str] = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp"}
# What survives from the original's metadata: colours and transparency, nothing about the camera.
KEPT_INFO = ("icc_profile", "transparency")


class InvalidImage(DomainError):  # noqa: N818 - names the failure (ARCHITECTURE.md)
    """An upload that is not a JPEG, PNG or WebP within the limits, or cannot be decoded."""

    code = "invalid_image"
    status_code = status.HTTP_400_BAD_REQUEST
    message = "The file is not a valid image."

    def __init__(self, detail: str | None = None, *, attr: str | None = "file") -> None:
        detail = detail or self.message
        super().__init__(detail, items=[ErrorItem(detail, attr)])


@dataclass(frozen=True)
class CleanedImage:
    """An accepted upload, re-encoded: what gets stored as the original."""

    content: IO[bytes]
    format: str
    width: int
    height: int

    @property
    def extension(self) -> str:
        return FORMATS[self.format]


def _size_of(upload: IO[bytes]) -> int:
    size = getattr(upload, "size", None)
    if isinstance(size, int):
        return size
    upload.seek(0, io.SEEK_END)
    end = upload.tell()
    upload.seek(0)
    return end


def _encode(image: Image.Image, image_format: str, target: IO[bytes]) -> None:
    """Write the image in its own format (Pillow opens JPEG as L, RGB or CMYK and WebP as RGB or
    RGBA, all of which save as they are); metadata only if passed here, so only the ICC profile
    and, for PNG, the transparency kept in `info`."""
    options: dict[str, Any] = {}
    if icc_profile := image.info.get("icc_profile"):
        options["icc_profile"] = icc_profile
    if image_format in ("JPEG", "WEBP"):
        options["quality"] = ORIGINAL_QUALITY
    image.save(target, format=image_format, **options)


def image_clean(upload: IO[bytes]) -> CleanedImage:
    """Check an upload and re-encode it without metadata, orientation applied; `InvalidImage`
    for anything else (see the module's docstring)."""
    size = _size_of(upload)
    if size > IMAGE_MAX_BYTES:
        raise InvalidImage(f"The file is larger than {IMAGE_MAX_BYTES // (1024 * 1024)} MB.")
    if size == 0:
        raise InvalidImage("The file is empty.")
    upload.seek(0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(upload, formats=list(FORMATS))
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise InvalidImage(_too_many_pixels()) from None
        except Exception:  # noqa: BLE001 (UnidentifiedImageError and whatever a broken header raises)
            raise InvalidImage("The file is not a JPEG, PNG or WebP image.") from None
        with image:
            image_format = str(image.format)
            width, height = image.size
            if width * height > IMAGE_MAX_PIXELS:  # from the header: nothing decoded yet
                raise InvalidImage(_too_many_pixels())
            try:
                image.load()
                cleaned = ImageOps.exif_transpose(image)
            except (Image.DecompressionBombError, Image.DecompressionBombWarning):
                raise InvalidImage(_too_many_pixels()) from None
            except Exception as error:  # noqa: BLE001 (truncated, corrupt: whatever the decoder says)
                logger.info("image upload refused", extra={"error": repr(error)})
                raise InvalidImage("The image is truncated or corrupt.") from None
    cleaned.info = {key: cleaned.info[key] for key in KEPT_INFO if key in cleaned.info}
    content = tempfile.SpooledTemporaryFile(max_size=SPOOL_MAX_BYTES)  # noqa: SIM115 - returned
    _encode(cleaned, image_format, content)
    content.seek(0)
    return CleanedImage(
        content=content, format=image_format, width=cleaned.width, height=cleaned.height
    )


def _too_many_pixels() -> str:
    return f"The image has more than {IMAGE_MAX_PIXELS // 1_000_000} megapixels."


# --- names and URLs ----------------------------------------------------------------------------


def rendition_names(original: str) -> dict[str, str]:
    """The names of an original's renditions: derived from its name, so they are known (and can
    be removed) whatever state the row is in."""
    path = PurePosixPath(original)
    stem = str(path.with_suffix(""))
    return {"medium": f"{stem}-{MEDIUM_EDGE}.webp", "thumbnail": f"{stem}-{THUMBNAIL_EDGE}.webp"}


def image_url(name: str) -> str:
    """The public URL of a stored file (MEDIA_URL locally, the bucket or its CDN with S3)."""
    return str(default_storage.url(name))


def image_dict(
    *, id: int, file: str, thumbnail: str, alt: str, position: int, width: int, height: int
) -> dict[str, Any]:
    """An image in the API's shape; the original serves as the thumbnail until it is made."""
    url = image_url(file)
    return {
        "id": id,
        "url": url,
        "thumbnail_url": image_url(thumbnail) if thumbnail else url,
        "alt": alt,
        "position": position,
        "width": width,
        "height": height,
    }


def product_image_dict(image: ProductImage) -> dict[str, Any]:
    return image_dict(
        id=image.pk,
        file=image.file.name or "",
        thumbnail=image.thumbnail.name or "",
        alt=image.alt,
        position=image.position,
        width=image.width,
        height=image.height,
    )


# --- services ----------------------------------------------------------------------------------


def _lock_product(product_id: int) -> None:
    """Image order changes of one product run one at a time."""
    list(Product.objects.select_for_update().filter(pk=product_id).values_list("pk", flat=True))


def _place(*, product_id: int, image_id: int, position: int | None) -> int:
    """Put the image at `position` (None: last) and number the product's images 0, 1, 2…
    Returns the image's position."""
    ids = list(
        ProductImage.objects.filter(product_id=product_id)
        .order_by("position", "id")
        .values_list("id", flat=True)
    )
    ids.remove(image_id)
    target = len(ids) if position is None else min(position, len(ids))
    ids.insert(target, image_id)
    ProductImage.objects.bulk_update(
        [ProductImage(pk=pk, position=index) for index, pk in enumerate(ids)], ["position"]
    )
    return target


def primary_image_refresh(*, product_id: int) -> None:
    """Copy the primary image's thumbnail name (its original until the thumbnail exists; "" with
    no image) onto the product row, in the caller's transaction: the product list reads that
    column (`Product.primary_image`) rather than a subquery per row."""
    primary = (
        ProductImage.objects.filter(product_id=OuterRef("pk"))
        .order_by("position", "id")
        .values(name=Coalesce(NullIf("thumbnail", Value("")), "file", output_field=CharField()))[:1]
    )
    Product.objects.filter(pk=product_id).update(
        primary_image=Coalesce(Subquery(primary), Value(""), output_field=CharField())
    )


def _renumber(*, product_id: int) -> None:
    ids = ProductImage.objects.filter(product_id=product_id).order_by("position", "id")
    ProductImage.objects.bulk_update(
        [
            ProductImage(pk=pk, position=index)
            for index, pk in enumerate(ids.values_list("id", flat=True))
        ],
        ["position"],
    )


@transaction.atomic
def product_image_create(
    *,
    product: Product,
    upload: IO[bytes] | CleanedImage,
    alt: str = "",
    position: int | None = None,
) -> ProductImage:
    """Validate and store an image of `product` at `position` (None: after the others)."""
    cleaned = upload if isinstance(upload, CleanedImage) else image_clean(upload)
    _lock_product(product.pk)
    name = f"products/{product.pk}/{uuid.uuid4().hex}.{cleaned.extension}"
    stored = default_storage.save(name, File(cleaned.content, name=name))
    try:
        image = ProductImage.objects.create(
            product=product,
            file=stored,
            alt=alt,
            position=2**31 - 1,
            width=cleaned.width,
            height=cleaned.height,
        )
        image.position = _place(product_id=product.pk, image_id=image.pk, position=position)
    except BaseException:
        default_storage.delete(stored)
        raise
    enqueue_after_commit("inventory.tasks.make_image_renditions", image_id=image.pk)
    primary_image_refresh(product_id=product.pk)
    catalog_changed()
    return image


@transaction.atomic
def product_image_update(
    *, image: ProductImage, alt: str | None = None, position: int | None = None
) -> ProductImage:
    _lock_product(image.product_id)
    if alt is not None:
        image.alt = alt
        ProductImage.objects.filter(pk=image.pk).update(alt=alt)
    if position is not None:
        image.position = _place(product_id=image.product_id, image_id=image.pk, position=position)
        primary_image_refresh(product_id=image.product_id)
    catalog_changed()
    return image


@transaction.atomic
def product_image_delete(*, image: ProductImage) -> None:
    """Delete the row now and its files once that commits (`image_files_delete_after_commit`)."""
    _lock_product(image.product_id)
    image.delete()
    _renumber(product_id=image.product_id)
    primary_image_refresh(product_id=image.product_id)
    catalog_changed()


def image_files_delete_after_commit(image: ProductImage) -> None:
    """Queue the removal of a deleted image's files (the original and both renditions, made or
    not) for when the deletion commits; a rollback keeps them."""
    if not image.file.name:
        return
    names = [image.file.name, *rendition_names(image.file.name).values()]
    enqueue_after_commit("inventory.tasks.delete_image_files", names=names)


def stored_files_delete(*, names: Sequence[str]) -> int:
    """Remove files from storage; a missing one is no error (the task may run twice)."""
    for name in names:
        default_storage.delete(name)
    return len(names)


def _rendition(image: Image.Image, edge: int) -> bytes:
    copy = image.copy()
    copy.thumbnail((edge, edge), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    copy.save(buffer, format="WEBP", quality=RENDITION_QUALITY, method=4)
    return buffer.getvalue()


def image_renditions_make(*, image_id: int) -> bool:
    """Make the WebP thumbnail and medium size of a stored original. Idempotent: an image
    deleted meanwhile, or already done, is left alone. Returns whether anything was made."""
    image = ProductImage.objects.filter(pk=image_id).first()
    if image is None or image.thumbnail:
        return False
    original_name = image.file.name or ""
    names = rendition_names(original_name)
    with default_storage.open(original_name, "rb") as source, Image.open(source) as original:
        if original.format == "JPEG":  # decode at a reduced scale: much faster, still ≥ 1024 px
            original.draft(original.mode, (MEDIUM_EDGE, MEDIUM_EDGE))
        original.load()
        mode = "RGBA" if original.has_transparency_data else "RGB"
        picture = original.convert(mode) if original.mode != mode else original
        medium = _rendition(picture, MEDIUM_EDGE)
        thumbnail = _rendition(picture, THUMBNAIL_EDGE)
    # Each name is written once (content never changes under a name); a rerun overwrites with
    # the same bytes.
    for name, content in ((names["medium"], medium), (names["thumbnail"], thumbnail)):
        default_storage.delete(name)
        default_storage.save(name, File(io.BytesIO(content), name=name))
    updated = ProductImage.objects.filter(pk=image_id, thumbnail="").update(
        thumbnail=names["thumbnail"], medium=names["medium"]
    )
    if not updated:  # deleted while we worked: its deletion also removes these names
        stored_files_delete(names=list(names.values()))
        return False
    primary_image_refresh(product_id=image.product_id)
    catalog_changed()
    return True
