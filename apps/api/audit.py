"""GET /api/v1/audit/: the audit log, for tenant admins (their tenant) and platform admins (every tenant)."""

from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.response import Response

from apps.api.base import ERRORS, TenantApiView
from apps.api.serializers import RequestSerializer
from apps.audit.models import ActorType, Outcome
from apps.audit.representation import audit_event_data
from apps.audit.selectors import MAX_LIMIT, audit_list, tenant_slugs

# An aud_… id, or an ISO 8601 (RFC 3339) date or date-time: apps/audit/selectors.py `_since_bound`.
SinceField = extend_schema_field(
    {
        "anyOf": [
            {"type": "string", "pattern": r"^aud_[0-9a-z]{26}$"},
            {"type": "string", "format": "date-time"},
            {"type": "string", "format": "date"},
        ]
    }
)(type("SinceField", (serializers.CharField,), {}))


class AuditQuerySerializer(RequestSerializer):
    since = SinceField(
        required=False, max_length=64, help_text="an aud_… id (rows after it, oldest first) or an ISO 8601 date or time"
    )
    action = serializers.CharField(required=False, max_length=60, help_text="e.g. workflow.deleted, or workflow.* for all")
    actor = serializers.CharField(required=False, max_length=200, help_text="e.g. user:alice, apikey:key_…")
    tenant = serializers.CharField(required=False, max_length=40, help_text="platform admins: one tenant's rows only")
    limit = serializers.IntegerField(required=False, default=50, min_value=1, max_value=MAX_LIMIT)


class AuditEventSerializer(serializers.Serializer):
    """The response shape (apps/audit/representation.py), for the OpenAPI schema."""

    id = serializers.CharField()
    seq = serializers.IntegerField()
    ts = serializers.DateTimeField()
    tenant_id = serializers.IntegerField()
    tenant = serializers.CharField(allow_null=True, help_text="null once the tenant is deleted")
    actor = serializers.CharField()
    actor_type = serializers.ChoiceField(choices=ActorType.values)
    channel = serializers.CharField()
    action = serializers.CharField()
    target = serializers.CharField()
    outcome = serializers.ChoiceField(choices=Outcome.values)
    ip = serializers.IPAddressField(allow_null=True)
    request_id = serializers.CharField()
    details = serializers.JSONField()
    hash = serializers.CharField(allow_null=True, help_text="null until the row is sealed into the chain (seconds)")


class AuditListSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    results = AuditEventSerializer(many=True)


class AuditListView(TenantApiView):
    @extend_schema(
        operation_id="audit_list",
        parameters=[AuditQuerySerializer],
        responses={200: AuditListSerializer, **ERRORS},
        summary="The audit log: newest first, or after `since` oldest first (tenant admins and owners, platform admins)",
    )
    def get(self, request):
        query = self.validated(AuditQuerySerializer, request.query_params)
        events = audit_list(**self.scope, tenant_slug=query.pop("tenant", None), **query)
        slugs = tenant_slugs(e.tenant_id for e in events)
        return Response({"count": len(events), "results": [audit_event_data(e, slugs=slugs) for e in events]})
