"""REST endpoints for images and registries; all changes go through ``apps.images.services``.

Long image work answers 202 with the Operation it started (follow it at
``/api/operations/{id}/``); tag, remove, inspect and prune wait for the agent.
"""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response

from apps.images import services
from apps.images.api.serializers import (
    HistorySerializer,
    ImageSerializer,
    ImportQuerySerializer,
    PruneResultSerializer,
    PruneSerializer,
    PullSerializer,
    PushSerializer,
    RegistrySerializer,
    RegistryWriteSerializer,
    RemoveQuerySerializer,
    RemoveResultSerializer,
    SaveSerializer,
    TagSerializer,
    UploadQuerySerializer,
)
from apps.images.models import Image, Registry
from apps.operations.api.serializers import OperationSerializer
from apps.operations.api.streams import (
    MULTIPART,
    RAW_ARCHIVE_TYPES,
    public_base_url,
    upload_from_request,
)
from apps.teams.api.base import TeamScopedViewSet
from berth.api import JsonErrorsMixin

# Acting on a shared system image (team NULL) makes a copy for the caller's
# team, so the object check (operator of the image's team) does not apply;
# the service requires an acting role in the team the copy goes to.
SHARED_IMAGE_ACTIONS = frozenset({"push", "tag"})

ARCHIVE_BODY = {
    **{media_type: OpenApiTypes.BINARY for media_type in sorted(RAW_ARCHIVE_TYPES)},
    MULTIPART: {"type": "object", "properties": {"file": {"type": "string", "format": "binary"}}},
}
ACCEPTED = {202: OperationSerializer}


class ImageViewSet(
    JsonErrorsMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, TeamScopedViewSet
):
    """Images the hosts have: system images (no team) and the caller's teams' own."""

    queryset = Image.objects.select_related("host", "team")
    serializer_class = ImageSerializer
    shared_team_null = True

    def get_queryset(self):
        rows = super().get_queryset()
        host = self.request.query_params.get("host")
        return rows.filter(host__name=host) if host else rows

    def check_object_permissions(self, request, obj):
        if obj.team_id is None and self.action in SHARED_IMAGE_ACTIONS:
            return
        super().check_object_permissions(request, obj)

    @extend_schema(
        parameters=[RemoveQuerySerializer],
        responses={200: RemoveResultSerializer, 409: OpenApiResponse(description="in use")},
    )
    def destroy(self, request, *args, **kwargs):
        image = self.get_object()
        query = _valid(RemoveQuerySerializer, request.query_params)
        return Response(services.remove_image(image, force=query["force"]))

    @extend_schema(request=PullSerializer, responses=ACCEPTED)
    @action(detail=False, methods=["post"])
    def pull(self, request):
        body = _valid(PullSerializer, request.data)
        operation = services.pull_image(request.user, body)
        return _accepted(operation)

    @extend_schema(request=PushSerializer, responses=ACCEPTED)
    @action(detail=True, methods=["post"])
    def push(self, request, pk=None):
        image = self.get_object()
        body = _valid(PushSerializer, request.data)
        operation = services.push_image(request.user, image, body)
        return _accepted(operation)

    @extend_schema(request=TagSerializer, responses={201: ImageSerializer})
    @action(detail=True, methods=["post"])
    def tag(self, request, pk=None):
        image = self.get_object()
        body = _valid(TagSerializer, request.data)
        tagged = services.tag_image(request.user, image, body)
        return Response(ImageSerializer(tagged).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    @action(detail=True, methods=["get"])
    def inspect(self, request, pk=None):
        """The agent's view: ``{"image", "manifest", "config"}``."""
        return Response(services.inspect_image(self.get_object()))

    @extend_schema(responses={200: HistorySerializer})
    @action(detail=True, methods=["get"])
    def history(self, request, pk=None):
        image = self.get_object()
        return Response({"reference": image.reference, "history": services.image_history(image)})

    @extend_schema(request=PruneSerializer, responses={200: PruneResultSerializer})
    @action(detail=False, methods=["post"])
    def prune(self, request):
        body = _valid(PruneSerializer, request.data)
        return Response(services.prune_images(request.user, body))

    @extend_schema(parameters=[UploadQuerySerializer], request=ARCHIVE_BODY, responses=ACCEPTED)
    @action(detail=False, methods=["post"], parser_classes=[MultiPartParser])
    def load(self, request):
        """Load a ``docker save`` or OCI archive sent as the body (or multipart ``file``)."""
        query = _valid(UploadQuerySerializer, request.query_params)
        operation = services.load_image(
            request.user,
            upload_from_request(request),
            host_name=query.get("host"),
            team_slug=query.get("team"),
            base_url=public_base_url(request),
        )
        return _accepted(operation)

    @extend_schema(parameters=[ImportQuerySerializer], request=ARCHIVE_BODY, responses=ACCEPTED)
    @action(detail=False, methods=["post"], url_path="import", parser_classes=[MultiPartParser])
    def import_(self, request):
        """Import a root filesystem tar (the body, or multipart ``file``) as ``reference``."""
        query = _valid(ImportQuerySerializer, request.query_params)
        operation = services.import_image(
            request.user,
            upload_from_request(request),
            reference=query["reference"],
            host_name=query.get("host"),
            team_slug=query.get("team"),
            base_url=public_base_url(request),
        )
        return _accepted(operation)

    @extend_schema(request=SaveSerializer, responses=ACCEPTED)
    @action(detail=False, methods=["post"])
    def save(self, request):
        """Save images into one archive; download it from the operation when it succeeded."""
        body = _valid(SaveSerializer, request.data)
        operation = services.save_images(request.user, body, base_url=public_base_url(request))
        return _accepted(operation)


class RegistryViewSet(
    JsonErrorsMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    TeamScopedViewSet,
):
    """A team's registry credentials; viewers may read them (never the password)."""

    queryset = Registry.objects.select_related("team")
    serializer_class = RegistrySerializer
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    @extend_schema(request=RegistryWriteSerializer, responses={201: RegistrySerializer})
    def create(self, request, *args, **kwargs):
        body = _valid(RegistryWriteSerializer, request.data)
        registry = services.create_registry(request.user, body)
        return Response(RegistrySerializer(registry).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=RegistryWriteSerializer, responses=RegistrySerializer)
    def partial_update(self, request, *args, **kwargs):
        registry = self.get_object()
        body = _valid(RegistryWriteSerializer, request.data, partial=True)
        registry = services.update_registry(registry, body)
        return Response(RegistrySerializer(registry).data)

    def perform_destroy(self, instance):
        services.delete_registry(instance)


def _accepted(operation) -> Response:
    return Response(OperationSerializer(operation).data, status=status.HTTP_202_ACCEPTED)


def _valid(serializer_class, data, *, partial: bool = False) -> dict:
    serializer = serializer_class(data=data, partial=partial)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)
