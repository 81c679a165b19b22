"""Operations (team-scoped, read-only) and the transfer endpoints agents use for archives."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, permissions, status
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.operations import services
from apps.operations.api.serializers import OperationQuerySerializer, OperationSerializer
from apps.operations.api.streams import (
    ARCHIVE_TYPE,
    FILE_RENDERERS,
    declared_length,
    file_response,
)
from apps.operations.models import Operation
from apps.teams.api.base import TeamScopedViewSet
from berth.api import JsonErrorsMixin

BINARY_RESPONSE = {(200, ARCHIVE_TYPE): OpenApiTypes.BINARY}


class OperationViewSet(
    JsonErrorsMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, TeamScopedViewSet
):
    """Operations are started by the image endpoints and finished by agents' reports."""

    queryset = Operation.objects.select_related("team", "host", "user")
    serializer_class = OperationSerializer

    def get_queryset(self):
        rows = super().get_queryset()
        if self.action != "list":
            return rows
        query = OperationQuerySerializer(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        filters = {
            "status": "status",
            "kind": "kind",
            "host": "host__name",
            "team": "team__slug",
        }
        for param, lookup in filters.items():
            if query.validated_data.get(param):
                rows = rows.filter(**{lookup: query.validated_data[param]})
        return rows

    @extend_schema(parameters=[OperationQuerySerializer])
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(
        responses={
            **BINARY_RESPONSE,
            409: OpenApiResponse(description="not finished, failed, or no archive"),
            410: OpenApiResponse(description="the archive expired (BERTH_TRANSFER_TTL)"),
        }
    )
    @action(detail=True, methods=["get"], renderer_classes=FILE_RENDERERS)
    def download(self, request, pk=None):
        """The archive a succeeded ``save`` operation produced."""
        operation = self.get_object()
        path, size = services.archive_of(operation)
        return file_response(request, path, size=size, filename=f"images-{operation.pk}.tar")


TOKEN_PARAMETER = OpenApiParameter("token", str, OpenApiParameter.PATH)


class TransferView(JsonErrorsMixin, APIView):
    """Agents read uploaded archives (GET) and deliver saved ones (PUT).

    Authenticated only by ``Authorization: Transfer <token>`` carrying the
    URL's token, while the operation is queued or running; user sessions and
    API tokens are deliberately not accepted.
    """

    authentication_classes: list = []
    permission_classes = [permissions.AllowAny]
    renderer_classes = FILE_RENDERERS

    @extend_schema(auth=[], parameters=[TOKEN_PARAMETER], responses=BINARY_RESPONSE)
    def get(self, request, token: str):
        transfer = services.authorize_transfer(token, _authorization(request), write=False)
        path = services.transfer_path(transfer)
        return file_response(request, path, size=transfer.size, filename="")

    @extend_schema(
        auth=[],
        parameters=[TOKEN_PARAMETER],
        request={ARCHIVE_TYPE: OpenApiTypes.BINARY},
        responses={204: None},
    )
    def put(self, request, token: str):
        transfer = services.authorize_transfer(token, _authorization(request), write=True)
        raw = request._request
        upload = services.Upload(read=raw.read, length=declared_length(request))
        services.receive_transfer(transfer, upload)
        return Response(status=status.HTTP_204_NO_CONTENT)


def _authorization(request) -> str:
    return request.META.get("HTTP_AUTHORIZATION", "")
