"""API-wide plumbing: one error body shape and one pagination style.

Clients (the CLI, scripts, the dashboard) parse errors in exactly one shape,
``{"error": {"code", "message", "fields"}}``, whatever raised them: DRF,
Django or a service.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, JsonResponse
from rest_framework import exceptions
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from berth.errors import ServiceError


class Pagination(LimitOffsetPagination):
    default_limit = 50
    max_limit = 500


class JsonErrorsMixin:
    """Errors stay JSON on views that render text or YAML: clients parse one error shape."""

    def finalize_response(self, request, response, *args, **kwargs):
        if response.status_code >= 400 and isinstance(getattr(response, "data", None), dict):
            request.accepted_renderer = JSONRenderer()
            request.accepted_media_type = "application/json"
        return super().finalize_response(request, response, *args, **kwargs)


def error_body(code: str, message: str, fields: dict | None = None) -> dict:
    return {"error": {"code": code, "message": message, "fields": fields or {}}}


def exception_handler(exc, context):
    """Render every handled exception as ``error_body``; unknown ones stay 500s (and get logged)."""
    exc = _translate(exc)
    if isinstance(exc, ServiceError):
        fields = {exc.field: [exc.message]} if exc.field else {}
        return Response(error_body(exc.code, exc.message, fields), status=exc.status)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    response.data = _drf_error_body(exc)
    return response


def _translate(exc):
    """Map Django's own exceptions to DRF's so one code path renders them."""
    if isinstance(exc, Http404):
        return exceptions.NotFound()
    if isinstance(exc, DjangoPermissionDenied):
        return exceptions.PermissionDenied()
    if isinstance(exc, DjangoValidationError):
        detail = (
            exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        )
        return exceptions.ValidationError(detail)
    return exc


def _drf_error_body(exc) -> dict:
    if isinstance(exc, exceptions.ValidationError):
        fields = _field_errors(exc.detail)
        return error_body("invalid", _first_message(fields) or "Invalid input.", fields)
    if isinstance(exc, exceptions.APIException):
        codes = exc.get_codes()
        code = codes if isinstance(codes, str) else exc.default_code
        return error_body(code, _flatten(exc.detail))
    return error_body("error", str(exc))


def _field_errors(detail) -> dict:
    """Validation errors keyed by field; a bare list becomes ``non_field_errors``."""
    if isinstance(detail, dict):
        return {key: _as_list(value) for key, value in detail.items()}
    return {"non_field_errors": _as_list(detail)}


def _as_list(value) -> list:
    if isinstance(value, list):
        return [_flatten(item) if not isinstance(item, dict) else item for item in value]
    if isinstance(value, dict):
        return [value]
    return [str(value)]


def _first_message(fields: dict) -> str | None:
    for name, messages in fields.items():
        for message in messages:
            text = message if isinstance(message, str) else str(message)
            return text if name == "non_field_errors" else f"{name}: {text}"
    return None


def _flatten(detail) -> str:
    if isinstance(detail, list):
        return " ".join(_flatten(item) for item in detail)
    if isinstance(detail, dict):
        return " ".join(f"{key}: {_flatten(value)}" for key, value in detail.items())
    return str(detail)


def json_error_or(default_view, status: int, code: str, message: str):
    """Django-level error handler: JSON under /api/ (no DRF view matched), HTML elsewhere."""

    def view(request, *args, **kwargs):
        if request.path.startswith("/api/"):
            return JsonResponse(error_body(code, message), status=status)
        return default_view(request, *args, **kwargs)

    return view
