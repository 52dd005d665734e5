"""POST /api/v1/auth/token/ and /api/v1/auth/refresh/: a JWT pair from a username and password, and the next
pair from a refresh token (which is spent: each refresh token works once). The tenant middleware lets exactly
these two paths through without a credential; they take no credential themselves. Bodies over
NEXUS_AUTH_MAX_BODY_BYTES are refused (413) and failed logins throttled (429, or 503 while the throttle cannot
be checked) by apps/ratelimit/middleware.py before these views run."""

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.services import token_refresh, user_login
from apps.api.base import validated
from apps.api.serializers import ErrorSerializer, RequestSerializer, documented_string

# Padding around a user name is dropped (login treats padded, case and Unicode variants as one name, and counts
# them as one for the throttle): the schema asks for a non-space character and no length, which a name padded
# up to the body limit may exceed; no user has a name longer than 150, so one answers 401.
UsernameField = documented_string("UsernameField", pattern=r"\S")


class LoginSerializer(RequestSerializer):
    trimmed_fields = ("username",)
    username = UsernameField()
    password = serializers.CharField(max_length=4096, trim_whitespace=False, style={"input_type": "password"})
    tenant = serializers.CharField(max_length=40, required=False, allow_blank=True, help_text="required if in several tenants")


class RefreshSerializer(RequestSerializer):
    refresh = serializers.CharField(max_length=4096)


TokenPairSerializer = inline_serializer(
    "TokenPair",
    fields={
        "access": serializers.CharField(),
        "refresh": serializers.CharField(),
        "tenant": serializers.CharField(),
        "role": serializers.CharField(),
        "expires_in": serializers.IntegerField(help_text="seconds until the access token expires"),
    },
)
ERRORS = {400: ErrorSerializer, 401: ErrorSerializer, 413: ErrorSerializer}


class LoginView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="auth_token",
        request=LoginSerializer,
        responses={200: TokenPairSerializer, 403: ErrorSerializer, 429: ErrorSerializer, 503: ErrorSerializer, **ERRORS},
        summary="Log in (local or LDAP user): a JWT pair bound to one tenant",
        auth=[],
    )
    def post(self, request):
        data = validated(LoginSerializer, request.data)
        pair = user_login(
            username=data["username"],
            password=data["password"],
            tenant_slug=data.get("tenant") or None,
            ip=request.META.get("REMOTE_ADDR"),
        )
        return Response(pair.as_dict())


class RefreshView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="auth_refresh",
        request=RefreshSerializer,
        responses={200: TokenPairSerializer, **ERRORS},
        summary="The next JWT pair from a refresh token, which is spent (a second use is 401)",
        auth=[],
    )
    def post(self, request):
        data = validated(RefreshSerializer, request.data)
        return Response(token_refresh(refresh=data["refresh"]).as_dict())
