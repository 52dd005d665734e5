"""Request validation for the REST API: shapes only; every rule lives in the services."""

from rest_framework import serializers


class StrictSerializer(serializers.Serializer):
    """Reject fields the endpoint does not know, naming them, instead of silently ignoring a typo."""

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({name: "unknown field" for name in unknown})
        return super().to_internal_value(data)


class WorkflowCreateSerializer(StrictSerializer):
    slug = serializers.CharField(max_length=80)
    name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    description = serializers.CharField(required=False, allow_blank=True)
    definition = serializers.JSONField(required=False, help_text="A workflow definition (DESIGN §4).")
    template = serializers.CharField(required=False, help_text="A template name, e.g. 'basic'.")


class WorkflowUpdateSerializer(StrictSerializer):
    name = serializers.CharField(max_length=200, required=False)
    description = serializers.CharField(required=False, allow_blank=True)
    definition = serializers.JSONField(required=False)


class DeploySerializer(StrictSerializer):
    environment = serializers.CharField(max_length=40, required=False, default="production")
    version = serializers.IntegerField(required=False, min_value=1)


class ExecuteSerializer(StrictSerializer):
    """Documents the execute body; the endpoint itself is a lean plain view (apps/api/execute.py)."""

    inputs = serializers.DictField(required=False, default=dict)
    session = serializers.CharField(required=False, allow_null=True)
    wait = serializers.BooleanField(required=False, default=True)
    environment = serializers.CharField(required=False, default="production")


class ValidateSerializer(StrictSerializer):
    definition = serializers.JSONField()


class TestSerializer(StrictSerializer):
    inputs = serializers.DictField(required=False)
    suite = serializers.CharField(required=False, help_text="a suite name, or 'all'")

    def validate(self, attrs):
        if "inputs" in attrs and "suite" in attrs:
            raise serializers.ValidationError({"suite": "give inputs or suite, not both"})
        return attrs


class ExecutionListQuerySerializer(serializers.Serializer):
    workflow = serializers.CharField(required=False)
    session = serializers.CharField(required=False)
    channel = serializers.CharField(required=False)
    status = serializers.CharField(required=False)
    limit = serializers.IntegerField(required=False, default=50, min_value=1, max_value=500)
    offset = serializers.IntegerField(required=False, default=0, min_value=0)


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()
    code = serializers.CharField()
    fields = serializers.DictField(required=False)
