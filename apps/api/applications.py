"""REST API for API applications: register (secrets shown once), list, show, update, rotate, revoke."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response

from apps.accounts.access import SCOPES
from apps.accounts.models import Role
from apps.api.base import ERRORS, TenantApiView
from apps.api.serializers import ErrorSerializer, RequestSerializer, documented_string
from apps.integrations.representation import application_data
from apps.integrations.selectors import app_get, app_list
from apps.integrations.services import (
    CREDENTIALS,
    EVENT_PATTERN,
    MAX_EVENTS,
    MAX_NAME,
    MAX_RATE_LIMIT,
    app_register,
    app_revoke,
    app_rotate,
    app_update,
)
from apps.integrations.urls_guard import MAX_URL_LENGTH

SCOPE_CHOICES = list(SCOPES)
SCOPES_HELP = "scopes narrowing the role (empty: none, the role alone limits); one of: " + ", ".join(SCOPE_CHOICES)
EVENTS_HELP = 'event types to receive: `*`, `<entity>.*` or `<entity>.<verb>`; default `["*"]` when a webhook_url is set'


EventTypeField = documented_string("EventTypeField", pattern=EVENT_PATTERN.pattern, maxLength=100)
# The shape of a webhook URL (empty: none); that its host resolves to a public address is checked when it is given.
WebhookUrlField = documented_string(
    "WebhookUrlField", pattern=r"^(https?://[^\s#@/?]+([/?][^\s#]*)?)?$", maxLength=MAX_URL_LENGTH
)


class ApplicationCreateSerializer(RequestSerializer):
    # The shape is checked here, the meaning by the service, which names every bad field at once.
    name = serializers.CharField(max_length=MAX_NAME)
    webhook_url = WebhookUrlField(
        max_length=MAX_URL_LENGTH,
        required=False,
        allow_blank=True,
        default="",
        help_text="http(s) URL receiving signed webhooks (Standard Webhooks); public addresses only unless allowed",
    )
    webhook_events = serializers.ListField(
        child=EventTypeField(max_length=100), max_length=MAX_EVENTS, required=False, allow_null=True, help_text=EVENTS_HELP
    )
    scopes = serializers.ListField(child=serializers.ChoiceField(choices=SCOPE_CHOICES), required=False, help_text=SCOPES_HELP)
    role = serializers.ChoiceField(
        choices=Role.values, required=False, default=Role.OPERATOR, help_text="at most the caller's role; default operator"
    )
    rate_limit_per_minute = serializers.IntegerField(
        min_value=1, max_value=MAX_RATE_LIMIT, required=False, allow_null=True, help_text="null: the tenant plan's default"
    )


class ApplicationUpdateSerializer(RequestSerializer):
    schema_min_properties = 1
    name = serializers.CharField(max_length=MAX_NAME, required=False)
    webhook_url = WebhookUrlField(
        max_length=MAX_URL_LENGTH, required=False, allow_blank=True, help_text="empty: stop sending webhooks"
    )
    webhook_events = serializers.ListField(
        child=EventTypeField(max_length=100), max_length=MAX_EVENTS, required=False, help_text=EVENTS_HELP
    )
    scopes = serializers.ListField(child=serializers.ChoiceField(choices=SCOPE_CHOICES), required=False, help_text=SCOPES_HELP)
    rate_limit_per_minute = serializers.IntegerField(
        min_value=1, max_value=MAX_RATE_LIMIT, required=False, allow_null=True, help_text="null: the tenant plan's default"
    )


class ApplicationRotateSerializer(RequestSerializer):
    credentials = serializers.ListField(
        child=serializers.ChoiceField(choices=list(CREDENTIALS)),
        required=False,
        allow_empty=False,
        help_text="which to replace; default: the API key, the client secret and (with a webhook URL) the webhook secret",
    )


class ApplicationSerializer(serializers.Serializer):
    """apps/integrations/representation.py `application_data`."""

    id = serializers.CharField(help_text="app_…")
    name = serializers.CharField()
    tenant = serializers.CharField(help_text="the tenant's slug")
    role = serializers.ChoiceField(choices=Role.values)
    scopes = serializers.ListField(child=serializers.CharField(), help_text=SCOPES_HELP)
    webhook_url = serializers.CharField(allow_blank=True)
    webhook_events = serializers.ListField(child=serializers.CharField())
    rate_limit_per_minute = serializers.IntegerField(allow_null=True)
    api_key_id = serializers.CharField(allow_null=True, help_text="key_… of the current API key")
    api_key_prefix = serializers.CharField(allow_null=True, help_text="the public part of the key: nxk_<prefix>_…")
    client_id = serializers.CharField(allow_null=True, help_text="the OAuth2 client id (POST /oauth/token/)")
    created_by = serializers.CharField()
    created_at = serializers.DateTimeField()
    revoked_at = serializers.DateTimeField(allow_null=True)


class ApplicationUpdatedSerializer(ApplicationSerializer):
    webhook_secret = serializers.CharField(required=False, help_text="only when this set the first webhook URL: shown once")


class ApplicationCredentialsSerializer(ApplicationSerializer):
    """An application with the secrets shown only in this answer (registration, rotation)."""

    api_key = serializers.CharField(required=False, help_text="nxk_…: shown once")
    client_secret = serializers.CharField(required=False, help_text="the OAuth2 client secret: shown once")
    webhook_secret = serializers.CharField(required=False, help_text="whsec_…: the webhook signing secret, shown once")


class ApplicationListSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    results = ApplicationSerializer(many=True)


def _data(tenant, app, secrets: dict | None = None) -> dict:
    return {**application_data(app, tenant_slug=tenant.slug), **(secrets or {})}


class ApplicationListView(TenantApiView):
    @extend_schema(
        operation_id="apps_list",
        responses={200: ApplicationListSerializer, **ERRORS},
        summary="List the tenant's API applications (revoked ones included)",
    )
    def get(self, request):
        apps = app_list(**self.scope)
        return Response({"count": len(apps), "results": [_data(self.tenant, app) for app in apps]})

    @extend_schema(
        operation_id="apps_create",
        request=ApplicationCreateSerializer,
        responses={201: ApplicationCredentialsSerializer, **ERRORS},
        summary="Register an API application: an API key, OAuth2 client credentials and a webhook secret, shown once",
    )
    def post(self, request):
        data = self.validated(ApplicationCreateSerializer, request.data)
        app, secrets = app_register(principal=self.principal, tenant=self.tenant, **data)
        return Response(_data(self.tenant, app, secrets), status=status.HTTP_201_CREATED)


class ApplicationDetailView(TenantApiView):
    @extend_schema(
        operation_id="apps_retrieve",
        responses={200: ApplicationSerializer, **ERRORS},
        summary="Show an API application (also to the application itself)",
    )
    def get(self, request, app_id: str):
        app = app_get(**self.scope, app_id=app_id)
        return Response(_data(self.tenant, app))

    @extend_schema(
        operation_id="apps_update",
        request=ApplicationUpdateSerializer,
        responses={200: ApplicationUpdatedSerializer, 409: ErrorSerializer, **ERRORS},
        summary="Change an API application's name, webhook, scopes or rate limit",
    )
    def patch(self, request, app_id: str):
        data = self.validated(ApplicationUpdateSerializer, request.data)
        app, secrets = app_update(principal=self.principal, tenant=self.tenant, app_id=app_id, **data)
        return Response(_data(self.tenant, app, secrets))


class ApplicationRotateView(TenantApiView):
    @extend_schema(
        operation_id="apps_rotate",
        request=ApplicationRotateSerializer,
        responses={200: ApplicationCredentialsSerializer, 409: ErrorSerializer, **ERRORS},
        summary="Replace an API application's credentials; the old ones stop working, the new are shown once",
    )
    def post(self, request, app_id: str):
        data = self.validated(ApplicationRotateSerializer, request.data)
        app, secrets = app_rotate(
            principal=self.principal, tenant=self.tenant, app_id=app_id, credentials=data.get("credentials")
        )
        return Response(_data(self.tenant, app, secrets))


class ApplicationRevokeView(TenantApiView):
    @extend_schema(
        operation_id="apps_revoke",
        request=None,
        responses={200: ApplicationSerializer, **ERRORS},
        summary="Revoke an API application: its key, OAuth2 client and tokens stop working (idempotent)",
    )
    def post(self, request, app_id: str):
        app = app_revoke(principal=self.principal, tenant=self.tenant, app_id=app_id)
        return Response(_data(self.tenant, app))
