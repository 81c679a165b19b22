"""The audit log over the API: list with filters, export as CSV or JSON. Read-only."""

from django.http import StreamingHttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, viewsets
from rest_framework.decorators import action

from apps.audit import services
from apps.audit.api.serializers import (
    AuditEventSerializer,
    AuditExportQuerySerializer,
    AuditQuerySerializer,
)
from apps.audit.models import AuditEvent
from berth.api import JsonErrorsMixin

CONTENT_TYPES = {"csv": "text/csv; charset=utf-8", "json": "application/json"}


class AuditEventViewSet(
    JsonErrorsMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """Site admins see every event, team owners their teams' events."""

    serializer_class = AuditEventSerializer
    queryset = AuditEvent.objects.all()

    def get_queryset(self):
        self._query(AuditQuerySerializer)
        visible = services.visible_to(self.request.user)
        return services.filtered(visible, self.request.query_params)

    def _query(self, serializer_class) -> dict:
        query = serializer_class(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        return query.validated_data

    @extend_schema(parameters=[AuditQuerySerializer])
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(
        parameters=[AuditExportQuerySerializer],
        responses={
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="CSV, header first"),
            (200, "application/json"): OpenApiResponse(OpenApiTypes.ANY, description="array"),
        },
    )
    @action(detail=False, methods=["get"], pagination_class=None)
    def export(self, request):
        """Every matching event as one CSV or JSON file (streamed)."""
        kind = self._query(AuditExportQuerySerializer).get("as", "json")
        events = self.filter_queryset(self.get_queryset())
        body = services.export_csv(events) if kind == "csv" else services.export_json(events)
        response = StreamingHttpResponse(body, content_type=CONTENT_TYPES[kind])
        stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
        response["Content-Disposition"] = f'attachment; filename="berth-audit-{stamp}.{kind}"'
        return response
