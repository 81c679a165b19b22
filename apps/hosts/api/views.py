"""Hosts are site-wide: any signed-in user may look, only staff may change labels."""

from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, permissions, viewsets
from rest_framework.response import Response

from apps.hosts import services
from apps.hosts.api.serializers import HostLabelsSerializer, HostSerializer
from apps.hosts.models import Host

HOST_LOOKUP = OpenApiParameter(
    "id", str, OpenApiParameter.PATH, description="host name, or its numeric id"
)


class IsStaffOrReadOnly(permissions.BasePermission):
    message = "Only staff may change hosts."

    def has_permission(self, request, view) -> bool:
        if request.method in permissions.SAFE_METHODS:
            return bool(request.user and request.user.is_authenticated)
        return bool(request.user and request.user.is_staff)


@extend_schema_view(
    retrieve=extend_schema(parameters=[HOST_LOOKUP]),
    partial_update=extend_schema(
        parameters=[HOST_LOOKUP], request=HostLabelsSerializer, responses=HostSerializer
    ),
)
class HostViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    queryset = Host.objects.all()
    serializer_class = HostSerializer
    permission_classes = [permissions.IsAuthenticated, IsStaffOrReadOnly]
    lookup_value_regex = "[^/]+"

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
