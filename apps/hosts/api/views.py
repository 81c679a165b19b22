"""Hosts are site-wide: any signed-in user may look; site admins change labels, cordon,
drain and create join tokens; a new host joins with a token and no user account."""

from django.db.models import TextField
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast
from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, permissions, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.throttling import AnonRateThrottle
from rest_framework.views import APIView

from apps.hosts import join, services
from apps.hosts.api.serializers import (
    DrainResultSerializer,
    DrainSerializer,
    HostLabelsSerializer,
    HostSerializer,
    JoinedSerializer,
    JoinSerializer,
    JoinTokenCreatedSerializer,
    JoinTokenCreateSerializer,
    JoinTokenSerializer,
)
from apps.hosts.models import Host, JoinToken

HOST_LOOKUP = OpenApiParameter(
    "id", str, OpenApiParameter.PATH, description="host name, or its numeric id"
)


class IsStaffOrReadOnly(permissions.BasePermission):
    message = "Only site admins may change hosts."

    def has_permission(self, request, view) -> bool:
        if request.method in permissions.SAFE_METHODS:
            return bool(request.user and request.user.is_authenticated)
        return bool(request.user and request.user.is_staff)


class IsStaff(permissions.BasePermission):
    message = "Only site admins may manage join tokens."

    def has_permission(self, request, view) -> bool:
        return bool(request.user and request.user.is_authenticated and request.user.is_staff)


HOST_FILTERS = [
    OpenApiParameter("status", str, enum=["online", "offline"]),
    OpenApiParameter("cordoned", bool),
    OpenApiParameter("label", str, many=True, description='"key" or "key=value"; repeatable'),
]


@extend_schema_view(
    list=extend_schema(parameters=HOST_FILTERS),
    retrieve=extend_schema(parameters=[HOST_LOOKUP]),
    partial_update=extend_schema(
        parameters=[HOST_LOOKUP], request=HostLabelsSerializer, responses=HostSerializer
    ),
    cordon=extend_schema(parameters=[HOST_LOOKUP], request=None, responses=HostSerializer),
    uncordon=extend_schema(parameters=[HOST_LOOKUP], request=None, responses=HostSerializer),
    drain=extend_schema(
        parameters=[HOST_LOOKUP], request=DrainSerializer, responses=DrainResultSerializer
    ),
)
class HostViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    queryset = Host.objects.all()
    serializer_class = HostSerializer
    permission_classes = [permissions.IsAuthenticated, IsStaffOrReadOnly]
    lookup_value_regex = "[^/]+"

    def get_queryset(self):
        hosts = super().get_queryset()
        params = self.request.query_params
        if params.get("status"):
            hosts = hosts.filter(status=params["status"])
        if params.get("cordoned") in ("1", "true", "0", "false"):
            hosts = hosts.filter(cordoned=params["cordoned"] in ("1", "true"))
        for number, label in enumerate(params.getlist("label")):
            key, has_value, value = label.partition("=")
            if not has_value:
                hosts = hosts.filter(labels__has_key=key)
                continue
            alias = f"label_{number}"
            text = Cast(KeyTextTransform(key, "labels"), output_field=TextField())
            hosts = hosts.alias(**{alias: text}).filter(**{alias: value})
        return hosts

    def get_object(self):
        """Look up by name first (what people type), then by numeric id."""
        key = self.kwargs[self.lookup_field]
        host = Host.objects.filter(name=key).first()
        if host is None and key.isdecimal():
            host = Host.objects.filter(pk=int(key)).first()
        if host is None:
            raise Http404
        self.check_object_permissions(self.request, host)
        return host

    def partial_update(self, request, *args, **kwargs):
        host = self.get_object()
        payload = HostLabelsSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        services.update_labels(host, payload.validated_data["labels"])
        return Response(HostSerializer(host).data)

    @action(detail=True, methods=["post"])
    def cordon(self, request, pk=None):
        """No new containers are placed on the host; running ones stay."""
        return Response(HostSerializer(services.set_cordoned(self.get_object(), True)).data)

    @action(detail=True, methods=["post"])
    def uncordon(self, request, pk=None):
        return Response(HostSerializer(services.set_cordoned(self.get_object(), False)).data)

    @action(detail=True, methods=["post"])
    def drain(self, request, pk=None):
        """Cordon the host and stop every container running on it."""
        host = self.get_object()
        payload = DrainSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        stopped = services.drain(host, payload.validated_data["timeout"])
        return Response({"host": HostSerializer(host).data, "stopped": stopped})


class JoinTokenViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Join tokens (site admins). DELETE revokes; the row stays for the audit trail."""

    serializer_class = JoinTokenSerializer
    queryset = JoinToken.objects.select_related("host", "created_by")
    permission_classes = [IsStaff]

    @extend_schema(request=JoinTokenCreateSerializer, responses={201: JoinTokenCreatedSerializer})
    def create(self, request):
        payload = JoinTokenCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        token, key = join.create_join_token(request.user, **payload.validated_data)
        token.key = key
        return Response(JoinTokenCreatedSerializer(token).data, status=status.HTTP_201_CREATED)

    def perform_destroy(self, instance):
        join.revoke_join_token(self.request.user, instance)


class JoinThrottle(AnonRateThrottle):
    scope = "join"
    rate = "20/minute"


class JoinView(APIView):
    """A new host trades a join token for its broker credentials (no user account)."""

    authentication_classes: list = []
    permission_classes = [permissions.AllowAny]
    throttle_classes = [JoinThrottle]

    @extend_schema(request=JoinSerializer, responses={201: JoinedSerializer})
    def post(self, request):
        payload = JoinSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        joined = join.join(payload.validated_data["token"], payload.validated_data["name"])
        body = {
            "host": joined.host.name,
            "broker_url": joined.broker_url,
            "queue": joined.queue,
            "signing_key": joined.signing_key,
        }
        return Response(body, status=status.HTTP_201_CREATED)
