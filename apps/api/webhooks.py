"""REST API for an application's webhook deliveries: list, show (with the payload), redeliver by hand."""

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response

from apps.api.base import ERRORS, TenantApiView
from apps.api.serializers import ErrorSerializer, RequestSerializer, documented_string
from apps.integrations.models import DeliveryStatus
from apps.integrations.representation import delivery_data
from apps.integrations.selectors import DEFAULT_LIMIT, EVENT_FILTER_RE, MAX_LIMIT, delivery_get, delivery_list
from apps.integrations.services import delivery_redeliver

EventTypeFilterField = documented_string("EventTypeFilterField", pattern=EVENT_FILTER_RE.pattern, maxLength=100)


class DeliveryQuerySerializer(RequestSerializer):
    status = serializers.ChoiceField(choices=DeliveryStatus.values, required=False)
    event_type = EventTypeFilterField(
        required=False, max_length=100, help_text="an event type (execution.completed) or <entity>.* (execution.*)"
    )
    limit = serializers.IntegerField(required=False, default=DEFAULT_LIMIT, min_value=1, max_value=MAX_LIMIT)


class DeliverySerializer(serializers.Serializer):
    """The response shape (apps/integrations/representation.py `delivery_data`), for the OpenAPI schema."""

    id = serializers.CharField(help_text="whd_…; also the webhook-id header of every attempt")
    application = serializers.CharField(help_text="app_…")
    event_id = serializers.CharField(help_text="evt_…")
    event_type = serializers.CharField()
    status = serializers.ChoiceField(choices=DeliveryStatus.values)
    attempts = serializers.IntegerField(min_value=0)
    response_code = serializers.IntegerField(allow_null=True, help_text="HTTP status of the last answer, if any")
    latency_ms = serializers.FloatField(allow_null=True, help_text="of the last answered attempt")
    last_error = serializers.CharField(allow_blank=True, help_text="why the last attempt failed; empty once delivered")
    next_attempt_at = serializers.DateTimeField(allow_null=True, help_text="when a pending delivery is tried next")
    created_at = serializers.DateTimeField()
    delivered_at = serializers.DateTimeField(allow_null=True)


class DeliveryDetailSerializer(DeliverySerializer):
    payload = serializers.JSONField(help_text="the event as sent: id, type, source, tenant, session, ts, data")


class DeliveryListSerializer(serializers.Serializer):
    deliveries = DeliverySerializer(many=True)


class DeliveryListView(TenantApiView):
    @extend_schema(
        operation_id="app_deliveries_list",
        parameters=[DeliveryQuerySerializer],
        responses={200: DeliveryListSerializer, **ERRORS},
        summary="An application's webhook deliveries, newest first (tenant admins, or the application itself)",
    )
    def get(self, request, app_id: str):
        query = self.validated(DeliveryQuerySerializer, request.query_params)
        deliveries = delivery_list(**self.scope, app_id=app_id, **query)
        return Response({"deliveries": [delivery_data(d) for d in deliveries]})


class DeliveryDetailView(TenantApiView):
    @extend_schema(
        operation_id="app_deliveries_retrieve",
        responses={200: DeliveryDetailSerializer, **ERRORS},
        summary="One webhook delivery with its payload",
    )
    def get(self, request, app_id: str, delivery_id: str):
        delivery = delivery_get(**self.scope, app_id=app_id, delivery_id=delivery_id)
        return Response(delivery_data(delivery, with_payload=True))


class DeliveryRedeliverView(TenantApiView):
    @extend_schema(
        operation_id="app_deliveries_redeliver",
        request=None,
        responses={
            202: OpenApiResponse(DeliverySerializer, description="back to pending with fresh attempts; sent shortly"),
            409: OpenApiResponse(ErrorSerializer, description="application revoked or without a URL, or an attempt in flight"),
            **ERRORS,
        },
        summary="Send a webhook delivery again, whatever its status",
    )
    def post(self, request, app_id: str, delivery_id: str):
        delivery = delivery_redeliver(**self.scope, app_id=app_id, delivery_id=delivery_id)
        return Response(delivery_data(delivery), status=status.HTTP_202_ACCEPTED)
