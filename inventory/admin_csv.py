"""Catalog CSV in the staff console: upload, preview, confirm, progress; and export.

The console runs the very code of `manage.py import_catalog` and `export_catalog`
(`inventory.catalog_csv`), through the import jobs of `inventory.bulk`: an upload is checked by a
dry run (the preview: new, changed and unchanged rows, every bad row with its line and column),
and only the confirm button imports it. A large file is checked and imported by a worker while
its page refreshes itself with the progress the worker records.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ORDER_VAR
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import (
    FileResponse,
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
    HttpResponseNotAllowed,
    HttpResponseRedirect,
)
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from common.exceptions import DomainError

from .bulk import (
    LARGE_FILE_BYTES,
    LARGE_FILE_ROWS,
    MAX_UPLOAD_BYTES,
    WAITING,
    import_job_confirm,
    import_job_create,
)
from .catalog_csv import COLUMNS, OPTIONAL_COLUMNS, REQUIRED_COLUMNS, export_catalog
from .models import CatalogImportJob, Product

# An export larger than this is spooled to a temporary file rather than held in memory.
EXPORT_SPOOL_BYTES = 2_621_440
RECENT_JOBS = 10
# Seconds between two refreshes of a waiting job's page.
REFRESH_SECONDS = 2


class ImportUploadForm(forms.Form):
    file = forms.FileField(
        label="Catalog CSV",
        help_text=(
            f"Columns by header name, in any order: {', '.join(REQUIRED_COLUMNS)}; optional "
            f"{', '.join(c for c in COLUMNS if c in OPTIONAL_COLUMNS)} (left out, an existing "
            "product keeps its value). UTF-8. Nothing is imported before you have seen the "
            "preview and confirmed it."
        ),
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,text/csv"}),
    )

    def clean_file(self) -> Any:
        upload = self.cleaned_data["file"]
        if upload.size > MAX_UPLOAD_BYTES:
            raise forms.ValidationError(
                f"The file is larger than {MAX_UPLOAD_BYTES // (1024 * 1024)} MB; "
                "import it with manage.py import_catalog."
            )
        return upload


def _check_import_permission(model_admin: admin.ModelAdmin[Product], request: HttpRequest) -> None:
    """Importing creates and changes products: both permissions are needed."""
    if not (model_admin.has_add_permission(request) and model_admin.has_change_permission(request)):
        raise PermissionDenied


def _context(
    model_admin: admin.ModelAdmin[Product], request: HttpRequest, **extra: Any
) -> dict[str, Any]:
    return {**model_admin.admin_site.each_context(request), "opts": Product._meta, **extra}


def import_csv_view(model_admin: admin.ModelAdmin[Product], request: HttpRequest) -> HttpResponse:
    """The upload form; a valid upload becomes a job, whose page shows the preview."""
    _check_import_permission(model_admin, request)
    form = ImportUploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            job = import_job_create(
                content=b"".join(upload.chunks()),
                file_name=upload.name,
                actor=request.user if isinstance(request.user, User) else None,
            )
        except DomainError as error:
            form.add_error("file", error.detail)
        else:
            return HttpResponseRedirect(
                reverse("admin:inventory_product_import_job", args=[job.pk])
            )
    context = _context(
        model_admin,
        request,
        title="Import products from CSV",
        form=form,
        large_bytes=LARGE_FILE_BYTES,
        large_rows=LARGE_FILE_ROWS,
        recent_jobs=CatalogImportJob.objects.defer("content", "errors").select_related(
            "created_by"
        )[:RECENT_JOBS],
    )
    return TemplateResponse(request, "admin/inventory/product/import_csv.html", context)


def import_job_view(
    model_admin: admin.ModelAdmin[Product], request: HttpRequest, job_id: int
) -> HttpResponse:
    """A job's state: progress while it waits or runs (the page refreshes itself), then the
    preview with its confirm button, or the import's outcome."""
    _check_import_permission(model_admin, request)
    job = get_object_or_404(CatalogImportJob.objects.defer("content"), pk=job_id)
    waiting = job.status in WAITING
    context = _context(
        model_admin,
        request,
        title=f"Import {job.file_name}",
        job=job,
        waiting=waiting,
        refresh_seconds=REFRESH_SECONDS if waiting else None,
        percent=min(100, job.bytes_read * 100 // max(job.size, 1)),
        more_errors=max(0, job.error_count - len(job.errors)),
        can_confirm=job.status == CatalogImportJob.Status.PREVIEWED and job.error_count == 0,
    )
    return TemplateResponse(request, "admin/inventory/product/import_job.html", context)


def import_confirm_view(
    model_admin: admin.ModelAdmin[Product], request: HttpRequest, job_id: int
) -> HttpResponse:
    _check_import_permission(model_admin, request)
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    try:
        job = import_job_confirm(job_id=job_id)
    except DomainError as error:
        model_admin.message_user(request, error.detail, level=messages.ERROR)
    else:
        if job.status == CatalogImportJob.Status.DONE:
            model_admin.message_user(
                request,
                f"Imported {job.file_name}: {job.created} new, {job.changed} changed, "
                f"{job.unchanged} unchanged.",
                level=messages.SUCCESS,
            )
    return HttpResponseRedirect(reverse("admin:inventory_product_import_job", args=[job_id]))


def csv_download(product_ids: Sequence[int] | None) -> FileResponse:
    """The catalog (or these products) as `export_catalog` writes it: a file that imports back."""
    spool = tempfile.SpooledTemporaryFile(max_size=EXPORT_SPOOL_BYTES)  # noqa: SIM115 (the response closes it)
    export_catalog(spool, product_ids=product_ids)
    spool.seek(0)
    return FileResponse(
        spool,
        as_attachment=True,
        filename=f"products-{timezone.localdate():%Y-%m-%d}.csv",
        content_type="text/csv; charset=utf-8",
    )


def export_csv_view(
    model_admin: admin.ModelAdmin[Product], request: HttpRequest
) -> HttpResponseBase:
    """The product list as shown (its filters and search, all pages) as a CSV download; the whole
    catalog when nothing narrows it."""
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    if not set(request.GET) - {ORDER_VAR}:
        return csv_download(None)
    try:
        changelist = model_admin.get_changelist_instance(request)
    except IncorrectLookupParameters:
        return HttpResponseRedirect(reverse("admin:inventory_product_changelist"))
    queryset = changelist.get_queryset(request).order_by()
    return csv_download(list(queryset.values_list("pk", flat=True)))


@admin.action(description="Export selected products as CSV", permissions=["view"])
def export_selected(
    model_admin: admin.ModelAdmin[Product], request: HttpRequest, queryset: QuerySet[Product]
) -> HttpResponseBase:
    return csv_download(list(queryset.order_by().values_list("pk", flat=True)))
