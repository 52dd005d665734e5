"""REST API for tenants: list, create, show, update, suspend, resume, delete. Who may do what is decided by the services."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response

from apps.api.base import ERRORS, PrincipalApiView
from apps.api.serializers import ErrorSerializer, StrictSerializer, documented_string
from apps.quotas.selectors import quota_usage, quota_usage_all_tenants
from apps.tenants.models import Isolation
from apps.tenants.representation import tenant_data
from apps.tenants.selectors import tenant_list_all_tenants, tenant_show
from apps.tenants.services import SLUG_RE, tenant_create, tenant_delete, tenant_resume, tenant_suspend, tenant_update

TenantSlugField = documented_string("TenantSlugField", pattern=SLUG_RE.pattern, maxLength=40)


class TenantQuotasSerializer(serializers.Serializer):
    workflows = serializers.IntegerField(allow_null=True, help_text="null: unlimited")
    executions = serializers.IntegerField(allow_null=True, help_text="null: unlimited")


class TenantUsageSerializer(serializers.Serializer):
    workflows = serializers.IntegerField(help_text="workflows now (deleted ones do not count)")
    executions_this_period = serializers.IntegerField(help_text="runs stored in the period, every channel and kind")
    period = serializers.CharField(help_text='the quota period: "2026-11" (NEXUS_QUOTA_PERIOD=month) or "2026-11-24" (day), UTC')


class TenantSerializer(serializers.Serializer):
    """The response shape (apps/tenants/representation.py), for the OpenAPI schema."""

    slug = serializers.CharField()
    name = serializers.CharField()
    plan = serializers.CharField()
    quotas = TenantQuotasSerializer()
    usage = TenantUsageSerializer()
    isolation = serializers.ChoiceField(choices=Isolation.values)
    max_concurrent_runs = serializers.IntegerField(allow_null=True, help_text="strict tenants; null: the platform's default")
    active = serializers.BooleanField()
    schema = serializers.CharField()
    created_at = serializers.DateTimeField()


class TenantListSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    results = TenantSerializer(many=True)


class TenantCreateSerializer(StrictSerializer):
    slug = TenantSlugField(max_length=40)
    name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    plan = serializers.CharField(max_length=40, required=False, default="standard")
    quota_workflows = serializers.IntegerField(min_value=0, required=False, allow_null=True, default=None)
    quota_executions = serializers.IntegerField(min_value=0, required=False, allow_null=True, default=None)
    isolation = serializers.ChoiceField(choices=Isolation.values, required=False, default=Isolation.STRICT)
    max_concurrent_runs = serializers.IntegerField(min_value=1, required=False, allow_null=True, default=None)
    quota_mail_per_day = serializers.IntegerField(min_value=0, required=False, allow_null=True, default=None)


class TenantUpdateSerializer(StrictSerializer):
    """Every field optional: what is left out stays as it is; null means unlimited (or the platform's default
    concurrency and mail per day)."""

    name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    plan = serializers.CharField(max_length=40, required=False)
    quota_workflows = serializers.IntegerField(min_value=0, required=False, allow_null=True)
    quota_executions = serializers.IntegerField(min_value=0, required=False, allow_null=True)
    isolation = serializers.ChoiceField(choices=Isolation.values, required=False)
    max_concurrent_runs = serializers.IntegerField(min_value=1, required=False, allow_null=True)
    quota_mail_per_day = serializers.IntegerField(min_value=0, required=False, allow_null=True)


def _data(tenant) -> dict:
    return tenant_data(tenant, usage=quota_usage(tenant))


class TenantListView(PrincipalApiView):
    @extend_schema(
        operation_id="tenants_list", responses={200: TenantListSerializer, **ERRORS}, summary="List tenants (platform admins)"
    )
    def get(self, request):
        tenants = tenant_list_all_tenants(principal=self.principal)
        usage = quota_usage_all_tenants(tenants)
        return Response({"count": len(tenants), "results": [tenant_data(t, usage=usage[t.pk]) for t in tenants]})

    @extend_schema(
        operation_id="tenants_create",
        request=TenantCreateSerializer,
        responses={201: TenantSerializer, 409: ErrorSerializer, **ERRORS},
        summary="Create a tenant and its schema (platform admins)",
    )
    def post(self, request):
        data = self.validated(TenantCreateSerializer, request.data)
        tenant = tenant_create(principal=self.principal, **data)
        return Response(_data(tenant), status=status.HTTP_201_CREATED)


class TenantDetailView(PrincipalApiView):
    @extend_schema(
        operation_id="tenants_retrieve",
        responses={200: TenantSerializer, **ERRORS},
        summary="Show a tenant (platform admins, or its own principals)",
    )
    def get(self, request, slug: str):
        return Response(_data(tenant_show(principal=self.principal, slug=slug)))

    @extend_schema(
        operation_id="tenants_update",
        request=TenantUpdateSerializer,
        responses={200: TenantSerializer, **ERRORS},
        summary="Change a tenant's name, plan, quotas or isolation (platform admins)",
    )
    def patch(self, request, slug: str):
        data = self.validated(TenantUpdateSerializer, request.data)
        return Response(_data(tenant_update(principal=self.principal, slug=slug, **data)))

    @extend_schema(
        operation_id="tenants_delete",
        parameters=[OpenApiParameter("confirm", OpenApiTypes.STR, required=True, description="the tenant's slug, again")],
        responses={204: None, **ERRORS},
        summary="Delete a tenant: drop its schema, domains, memberships and keys (platform admins)",
    )
    def delete(self, request, slug: str):
        tenant_delete(principal=self.principal, slug=slug, confirm=request.query_params.get("confirm", ""))
        return Response(status=status.HTTP_204_NO_CONTENT)


class TenantSuspendView(PrincipalApiView):
    @extend_schema(
        operation_id="tenants_suspend",
        request=None,
        responses={200: TenantSerializer, **ERRORS},
        summary="Suspend a tenant: its credentials stop working",
    )
    def post(self, request, slug: str):
        return Response(_data(tenant_suspend(principal=self.principal, slug=slug)))


class TenantResumeView(PrincipalApiView):
    @extend_schema(
        operation_id="tenants_resume",
        request=None,
        responses={200: TenantSerializer, **ERRORS},
        summary="Resume a suspended tenant",
    )
    def post(self, request, slug: str):
        return Response(_data(tenant_resume(principal=self.principal, slug=slug)))
