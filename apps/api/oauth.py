"""The OAuth2 endpoints under /oauth/, served by django-oauth-toolkit (configured in apps/integrations/oauth.py):
the client-credentials token (RFC 6749 §4.4), introspection (RFC 7662) and revocation (RFC 7009).

A client authenticates with its client id and secret, by HTTP Basic (preferred) or as form fields; the tenant
middleware lets these paths through without a Nexus credential. Answers and errors are the RFC's
(`{"error", "error_description"}`), not Nexus's error shape, so OAuth2 client libraries understand them.
"""

import base64
import binascii
import json
from urllib.parse import unquote_plus

from django.http import HttpResponse
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiResponse, extend_schema
from oauth2_provider.views.mixins import OAuthLibMixin
from rest_framework import serializers
from rest_framework.authentication import BaseAuthentication
from rest_framework.parsers import FormParser
from rest_framework.permissions import AllowAny
from rest_framework.views import APIView

from apps.accounts.access import SCOPES
from apps.api.serializers import RequestSerializer
from apps.integrations.services import oauth_token_issued, oauth_token_refused, oauth_token_revoked

SCOPES_HELP = "space-separated scopes, each among the application's; default: all of them. Known: " + " ".join(SCOPES)


class ClientCredentialsAuthentication(BaseAuthentication):
    """Marks the views whose caller is an OAuth2 client (checked by the toolkit, not by DRF)."""

    def authenticate(self, request):
        return None

    def authenticate_header(self, request) -> str:
        return 'Basic realm="nexus"'


class ClientCredentialsScheme(OpenApiAuthenticationExtension):
    target_class = ClientCredentialsAuthentication
    name = "ClientCredentials"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "basic",
            "description": "An API application's OAuth2 client id and secret (form-encoded, then Basic); "
            "or `client_id` and `client_secret` as form fields instead.",
        }


class ClientFields(RequestSerializer):
    client_id = serializers.CharField(required=False, help_text="when not given by HTTP Basic")
    client_secret = serializers.CharField(required=False, help_text="when not given by HTTP Basic")


class TokenRequestSerializer(ClientFields):
    grant_type = serializers.ChoiceField(choices=["client_credentials"])
    scope = serializers.CharField(required=False, help_text=SCOPES_HELP)


class TokenSerializer(serializers.Serializer):
    access_token = serializers.CharField(help_text="nxo_…: send as `Authorization: Bearer …`")
    token_type = serializers.ChoiceField(choices=["Bearer"])
    expires_in = serializers.IntegerField(help_text="seconds")
    scope = serializers.CharField(help_text="the scopes granted, space-separated")


class OAuthErrorSerializer(serializers.Serializer):
    """RFC 6749 §5.2 error (component `OAuthError`)."""

    error = serializers.CharField(help_text="invalid_request, invalid_client, invalid_grant, unauthorized_client, …")
    error_description = serializers.CharField(required=False)


class TokenHintSerializer(ClientFields):
    token = serializers.CharField()
    token_type_hint = serializers.ChoiceField(choices=["access_token", "refresh_token"], required=False)


class IntrospectionSerializer(serializers.Serializer):
    active = serializers.BooleanField(help_text="false for an unknown, expired or revoked token, or another client's")
    scope = serializers.CharField(required=False, help_text="what the token may do now, space-separated")
    client_id = serializers.CharField(required=False)
    token_type = serializers.CharField(required=False)
    exp = serializers.IntegerField(required=False, help_text="expiry, seconds since the epoch")
    iat = serializers.IntegerField(required=False, help_text="issued at, seconds since the epoch")
    sub = serializers.CharField(required=False, help_text="the application (app_…)")
    tenant = serializers.CharField(required=False, help_text="the application's tenant (slug)")
    role = serializers.CharField(required=False, help_text="the application's role")


INVALID_CLIENT = OpenApiResponse(
    OAuthErrorSerializer, description="invalid_client: unknown client, wrong secret or revoked application"
)


def _client_id(request) -> str | None:
    """The client id a request authenticates as: HTTP Basic (RFC 6749 §2.3.1), else the form field."""
    scheme, _, encoded = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    if scheme.lower() == "basic" and encoded:
        try:
            return unquote_plus(base64.b64decode(encoded, validate=True).decode().partition(":")[0]) or None
        except (binascii.Error, UnicodeDecodeError):
            return None
    return request.POST.get("client_id") or None


def _response(headers: dict, body: str | None, status: int) -> HttpResponse:
    response = HttpResponse(content=body or "", status=status, content_type=headers.get("Content-Type", "application/json"))
    for name, value in headers.items():
        if name.lower() != "content-type":
            response[name] = value
    return response


class _OAuthView(OAuthLibMixin, APIView):
    """An endpoint of the toolkit's OAuthLib server, for a client authenticating with its credentials."""

    authentication_classes = [ClientCredentialsAuthentication]
    permission_classes = [AllowAny]
    parser_classes = [FormParser]

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        request._request.sensitive_post_parameters = ["client_secret", "token"]  # kept out of error reports


class TokenView(_OAuthView):
    """Client credentials grant: an `nxo_` access token bound to the application's tenant, role and scopes."""

    @extend_schema(
        operation_id="oauth_token",
        request={"application/x-www-form-urlencoded": TokenRequestSerializer},
        responses={
            200: TokenSerializer,
            400: OpenApiResponse(
                OAuthErrorSerializer,
                description="invalid_request, unsupported_grant_type (only client_credentials), or invalid_scope "
                "(a scope the application does not have)",
            ),
            401: INVALID_CLIENT,
        },
        summary="An OAuth2 access token for an API application (client credentials grant)",
        tags=["oauth"],
    )
    def post(self, request):
        django_request = request._request
        _, headers, body, status = self.create_token_response(django_request)
        answer = _json(body)
        if status == 200 and isinstance(answer.get("access_token"), str):
            oauth_token_issued(access_token=answer["access_token"])
        else:
            oauth_token_refused(client_id=_client_id(django_request), error=str(answer.get("error", status)))
        return _response(headers, body, status)


class IntrospectView(_OAuthView):
    """Token introspection: whether a token of the calling client is active, and what it may do."""

    @extend_schema(
        operation_id="oauth_introspect",
        request={"application/x-www-form-urlencoded": TokenHintSerializer},
        responses={
            200: IntrospectionSerializer,
            400: OpenApiResponse(OAuthErrorSerializer, description="invalid_request (no token) or unsupported_token_type"),
            401: INVALID_CLIENT,
        },
        summary="Is this token active? (RFC 7662; a client learns only about its own tokens)",
        tags=["oauth"],
    )
    def post(self, request):
        core = self.get_oauthlib_core()
        uri, method, body, headers = core._extract_params(request._request)
        headers, body, status = core.server.create_introspect_response(uri, method, body, headers)
        return _response(headers, body, status)


class RevokeView(_OAuthView):
    """Token revocation: a token of the calling client stops working."""

    @extend_schema(
        operation_id="oauth_revoke_token",
        request={"application/x-www-form-urlencoded": TokenHintSerializer},
        responses={
            200: OpenApiResponse(description="Revoked, or not a token of this client (RFC 7009 §2.2)"),
            400: OpenApiResponse(OAuthErrorSerializer, description="invalid_request (no token) or unsupported_token_type"),
            401: INVALID_CLIENT,
        },
        summary="Revoke an access token (RFC 7009); it stops working at once",
        tags=["oauth"],
    )
    def post(self, request):
        django_request = request._request
        _, headers, body, status = self.create_revocation_response(django_request)
        if status == 200:
            oauth_token_revoked(client_id=_client_id(django_request))
        return _response(headers, body, status)


def _json(body: str | None) -> dict:
    try:
        answer = json.loads(body or "{}")
    except ValueError:
        return {}
    return answer if isinstance(answer, dict) else {}
