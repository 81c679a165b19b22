"""The caller's own account and API tokens."""

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts import services, totp
from apps.accounts.api.serializers import (
    ApiTokenCreatedSerializer,
    ApiTokenCreateSerializer,
    ApiTokenSerializer,
    MeSerializer,
    TotpCodeSerializer,
    TotpEnrolledSerializer,
    TotpStatusSerializer,
)
from apps.accounts.models import ApiToken


class MeView(APIView):
    @extend_schema(responses=MeSerializer)
    def get(self, request):
        return Response(MeSerializer(request.user).data)


class ApiTokenViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Users manage only their own tokens; DELETE revokes (the row stays for auditing)."""

    serializer_class = ApiTokenSerializer
    queryset = ApiToken.objects.all()

    def get_queryset(self):
        return ApiToken.objects.filter(user=self.request.user)

    @extend_schema(request=ApiTokenCreateSerializer, responses={201: ApiTokenCreatedSerializer})
    def create(self, request):
        payload = ApiTokenCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        token, key = services.create_token(request.user, **payload.validated_data)
        token.key = key
        return Response(ApiTokenCreatedSerializer(token).data, status=status.HTTP_201_CREATED)

    def perform_destroy(self, instance):
        services.revoke_token(instance)


class TotpView(APIView):
    """The caller's TOTP second factor for browser login.

    GET: whether it is on. POST: start enrolling (returns the secret as a URI,
    once). POST confirm/ with a code: turn it on. DELETE with a code: turn it off.
    """

    @extend_schema(responses=TotpStatusSerializer)
    def get(self, request):
        return Response({"enabled": totp.has_totp(request.user)})

    @extend_schema(request=None, responses={201: TotpEnrolledSerializer})
    def post(self, request):
        return Response({"uri": totp.enrol(request.user)}, status=status.HTTP_201_CREATED)

    @extend_schema(request=TotpCodeSerializer, responses={204: None})
    def delete(self, request):
        payload = TotpCodeSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        totp.disable(request.user, payload.validated_data["code"])
        return Response(status=status.HTTP_204_NO_CONTENT)


class TotpConfirmView(APIView):
    @extend_schema(request=TotpCodeSerializer, responses=TotpStatusSerializer)
    def post(self, request):
        payload = TotpCodeSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        totp.confirm(request.user, payload.validated_data["code"])
        return Response({"enabled": True})
