"""DRF defaults named in settings (REST_FRAMEWORK): ordering on every list, and OPTIONS
answers that never fail.

Kept apart from ``berth.api``: DRF imports these while ``rest_framework.views`` loads,
so this module must not import it (``berth.api`` does).
"""

from __future__ import annotations

from django.core.exceptions import FieldDoesNotExist
from rest_framework.filters import OrderingFilter
from rest_framework.metadata import SimpleMetadata


class Ordering(OrderingFilter):
    """``?ordering=field,-other`` on every list: fields the serializer shows that are model
    columns (or paths through relations); anything else is ignored, never a 500."""

    def get_valid_fields(self, queryset, view, context=None):
        fields = super().get_valid_fields(queryset, view, context or {})
        return [(name, label) for name, label in fields if _is_model_path(queryset.model, name)]


def _is_model_path(model, path: str) -> bool:
    for part in path.split("__"):
        if model is None:
            return False
        try:
            field = model._meta.get_field(part)
        except FieldDoesNotExist:
            return False
        if not getattr(field, "concrete", False):
            return False
        model = field.related_model
    return True


class Metadata(SimpleMetadata):
    """OPTIONS answers: views without a request serializer (actions taking files or
    nothing) describe no fields instead of failing with a 500."""

    def determine_actions(self, request, view):
        try:
            return super().determine_actions(request, view)
        except AssertionError:  # DRF: "should either include a `serializer_class` attribute"
            return {}
