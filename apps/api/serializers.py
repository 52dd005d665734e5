"""Request validation (shapes only; every rule lives in the services) and response shapes for the REST API."""

from django.http import QueryDict
from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.runs.models import Channel, Status
from apps.workflows.services import ENVIRONMENT_RE
from apps.workflows.services import SLUG_RE as WORKFLOW_SLUG_RE
from apps.workflows.templates_library import templates


class RequestSerializer(serializers.Serializer):
    # A request body or query string, taken exactly as the OpenAPI schema states it (generated clients and API
    # consumers trust it): a JSON value of the documented type only (DRF would turn 0 into "0", "1" into 1 and
    # "yes" into True), and in a query string an empty value is a value, refused unless the field allows blanks
    # (DRF would take `?workflow=` as no filter at all). Each refusal names the field.

    # Rules of the whole body that the service checks, stated in the schema too: the fewest fields it takes (a
    # PATCH with nothing to change is refused), and fields that may not come together.
    schema_min_properties: int = 0
    schema_exclusive: tuple[str, ...] = ()
    # Fields whose surrounding spaces are dropped before the value is checked (their schema says so in a pattern).
    trimmed_fields: tuple[str, ...] = ()

    def get_fields(self):
        fields = super().get_fields()
        for name, field in fields.items():  # a value is kept as sent: " " is not blank, and " x" is not "x"
            if name in self.trimmed_fields:
                continue
            for one in (field, getattr(field, "child", None)):
                if isinstance(one, serializers.CharField):
                    one.trim_whitespace = False
        return fields

    def to_internal_value(self, data):
        errors = {}
        if isinstance(data, QueryDict):
            for name, field in self.fields.items():
                if data.get(name) == "" and not getattr(field, "allow_blank", False):
                    errors[name] = "must not be empty"
        elif isinstance(data, dict):
            for name, field in self.fields.items():
                if name in data and (reason := json_type_error(field, data[name])):
                    errors[name] = reason
        if errors:
            raise serializers.ValidationError(errors)
        return super().to_internal_value(data)


def json_type_error(field: serializers.Field, value) -> str | None:
    """Why `value` (parsed JSON) is not of the type `field` documents, or None. Null is the field's own business."""
    if value is None or isinstance(field, StrictBooleanField | StrictCharField):  # these check it themselves
        return None
    if isinstance(field, serializers.BooleanField):
        return None if isinstance(value, bool) else "must be true or false"
    if isinstance(field, serializers.IntegerField):
        return None if isinstance(value, int) and not isinstance(value, bool) else "must be an integer"
    if isinstance(field, serializers.FloatField):
        return None if isinstance(value, int | float) and not isinstance(value, bool) else "must be a number"
    if isinstance(field, serializers.CharField | serializers.ChoiceField):
        return None if isinstance(value, str) else "must be a string"
    if isinstance(field, serializers.ListField):
        if not isinstance(value, list):
            return "must be an array"
        for index, item in enumerate(value):
            if reason := json_type_error(field.child, item):
                return f"item {index} {reason}"
        return None
    if isinstance(field, serializers.DictField):
        return None if isinstance(value, dict) else "must be an object"
    return None


class StrictSerializer(RequestSerializer):
    # Reject fields the endpoint does not know, naming them, instead of silently ignoring a typo (the schema says
    # `additionalProperties: false`). (A comment, not a docstring: drf-spectacular would print a docstring as the
    # description of every request body.)

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError(dict.fromkeys(unknown, "unknown field"))
        return super().to_internal_value(data)


class RequestSerializerSchema(OpenApiSerializerExtension):
    """What DRF's fields leave out of a request body's schema: a string field that refuses blanks has
    `minLength: 1` (drf-spectacular writes it only with COMPONENT_SPLIT_REQUEST, which renames every component),
    and a StrictSerializer's body has `additionalProperties: false`."""

    target_class = "apps.api.serializers.RequestSerializer"
    match_subclasses = True

    def map_serializer(self, auto_schema, direction):
        schema = auto_schema._map_serializer(self.target, direction, bypass_extensions=True)
        for name, prop in schema.get("properties", {}).items():
            field = self.target.fields[name]
            non_blank_string(field, prop)
            if isinstance(field, serializers.ListField):
                if isinstance(prop.get("items"), dict):
                    non_blank_string(field.child, prop["items"])
                if not field.allow_empty:
                    prop.setdefault("minItems", 1)
        if isinstance(self.target, StrictSerializer):
            schema["additionalProperties"] = False
        if self.target.schema_min_properties:
            schema["minProperties"] = self.target.schema_min_properties
        if self.target.schema_exclusive:
            schema["not"] = {"required": list(self.target.schema_exclusive)}
        return schema


def non_blank_string(field: serializers.Field, prop: dict) -> None:
    if isinstance(field, serializers.CharField) and not field.allow_blank and prop.get("type") == "string":
        prop.setdefault("minLength", 1)


def documented_string(name: str, **openapi) -> type[serializers.CharField]:
    """A CharField whose rule (a pattern, the allowed values) is written into the OpenAPI schema only: the service
    checks it, so every channel refuses a bad value with the same message."""
    return extend_schema_field({"type": "string", **openapi})(type(name, (serializers.CharField,), {}))


def documented_json(name: str, **openapi) -> type[serializers.JSONField]:
    """A JSONField documented as `openapi` (an object, an array of objects) and checked by the service."""
    return extend_schema_field(openapi)(type(name, (serializers.JSONField,), {}))


WorkflowSlugField = documented_string("WorkflowSlugField", pattern=WORKFLOW_SLUG_RE.pattern, maxLength=80)
TemplateNameField = documented_string("TemplateNameField", enum=sorted(templates()))
EnvironmentField = documented_string("EnvironmentField", pattern=ENVIRONMENT_RE.pattern, maxLength=40)
DefinitionField = documented_json("DefinitionField", type="object")
ChannelFilterField = documented_string("ChannelFilterField", enum=Channel.values)
StatusFilterField = documented_string("StatusFilterField", enum=Status.values)


class WorkflowCreateSerializer(StrictSerializer):
    schema_exclusive = ("definition", "template")
    slug = WorkflowSlugField(max_length=80, help_text="lower-case letters, digits and '-'; unique in the tenant")
    name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    description = serializers.CharField(required=False, allow_blank=True)
    definition = DefinitionField(required=False, help_text="A workflow definition (DESIGN §4).")
    template = TemplateNameField(required=False, help_text="Start from a template instead of a definition.")


class WorkflowUpdateSerializer(StrictSerializer):
    name = serializers.CharField(max_length=200, required=False)
    description = serializers.CharField(required=False, allow_blank=True)
    definition = DefinitionField(required=False, help_text="A new definition adds a version.")


class DeploySerializer(StrictSerializer):
    environment = EnvironmentField(max_length=40, required=False, default="production")
    version = serializers.IntegerField(required=False, min_value=1)


class StrictBooleanField(serializers.BooleanField):
    # true or false only: DRF's BooleanField would also take "yes", 1 or "on".

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid", input=data)
        return data


class StrictCharField(serializers.CharField):
    # A JSON string only, kept as sent: DRF's CharField would turn 42 into "42" and trim spaces.

    def __init__(self, **kwargs):
        super().__init__(trim_whitespace=False, **kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


# The inputs' shape is the workflow's input JSON Schema, checked by run_start (code invalid_inputs).
ExecuteInputsField = documented_json("ExecuteInputsField", type="object")


class ExecuteSerializer(StrictSerializer):
    # The execute body: it validates the body in the plain Django view (apps/api/execute.py) and documents it in
    # the OpenAPI schema (apps/api/schema.py), so the two cannot drift apart.
    inputs = ExecuteInputsField(required=False, default=dict, help_text="Validated against the workflow's input JSON Schema")
    session = StrictCharField(required=False, allow_null=True, help_text="ses_…: bind the run to it")
    wait = StrictBooleanField(required=False, default=True)
    environment = StrictCharField(required=False, allow_blank=True, default="production")


class ValidateSerializer(StrictSerializer):
    definition = DefinitionField()


class TestSerializer(StrictSerializer):
    schema_exclusive = ("inputs", "suite")
    inputs = serializers.DictField(required=False)
    suite = serializers.CharField(required=False, help_text="a suite name, or 'all'")

    def validate(self, attrs):
        if "inputs" in attrs and "suite" in attrs:
            raise serializers.ValidationError({"suite": "give inputs or suite, not both"})
        return attrs


# PostgreSQL's OFFSET is a bigint; a page this far in is empty anyway, and a larger number must be a 400, not a 500.
MAX_OFFSET = 2**31 - 1


class ExecutionListQuerySerializer(RequestSerializer):
    workflow = serializers.CharField(required=False, help_text="a workflow id (wf_…) or slug")
    session = serializers.CharField(required=False, help_text="ses_…")
    channel = ChannelFilterField(required=False)
    status = StatusFilterField(required=False)
    limit = serializers.IntegerField(required=False, default=50, min_value=1, max_value=500)
    offset = serializers.IntegerField(required=False, default=0, min_value=0, max_value=MAX_OFFSET)


class ErrorSerializer(serializers.Serializer):
    """Every error of every endpoint (component `Error`)."""

    detail = serializers.CharField(help_text="what went wrong, for a person")
    code = serializers.CharField(help_text="a stable machine-readable reason: not_found, invalid_inputs, rate_limited, …")
    # A declared field: DRF's serializer metaclass takes it off the class, so Serializer.fields (which the stubs
    # see being overridden) is untouched.
    fields = serializers.DictField(required=False, help_text="each bad input (a dotted path) and why")  # type: ignore[assignment]
    retry_after = serializers.IntegerField(required=False, help_text="429 only: seconds to wait, as in Retry-After")


# Response shapes, for the OpenAPI schema: the bodies themselves are built by each app's representation.py.


class DeploymentSerializer(serializers.Serializer):
    environment = serializers.CharField()
    version = serializers.IntegerField()
    version_id = serializers.CharField(help_text="wfv_…")
    deployed_by = serializers.CharField()
    deployed_at = serializers.DateTimeField()


class WorkflowSerializer(serializers.Serializer):
    """apps/workflows/representation.py `workflow_data`."""

    id = serializers.CharField(help_text="wf_…")
    slug = serializers.CharField()
    name = serializers.CharField(allow_blank=True)
    description = serializers.CharField(allow_blank=True)
    version = serializers.IntegerField(allow_null=True, help_text="the latest version's number")
    version_id = serializers.CharField(allow_null=True, help_text="the latest version's id (wfv_…)")
    input_schema = serializers.DictField(allow_null=True, help_text="the JSON Schema the inputs must match")
    created_by = serializers.CharField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    deployments = DeploymentSerializer(many=True)
    definition = serializers.DictField(required=False, help_text="the latest version's definition (not in lists)")


class WorkflowListSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    results = WorkflowSerializer(many=True)


class DeployResultSerializer(DeploymentSerializer):
    status = serializers.ChoiceField(choices=["deployed"])
    workflow_id = serializers.CharField(help_text="wf_…")


class ValidateResultSerializer(serializers.Serializer):
    valid = serializers.BooleanField()
    nodes = serializers.ListField(child=serializers.CharField(), help_text="node ids in execution order")
    inline_eligible = serializers.BooleanField(help_text="whether a waiting caller may get it run in the web process")


class ExecutionSerializer(serializers.Serializer):
    """apps/runs/representation.py `execution_data`."""

    id = serializers.CharField(help_text="run_…")
    workflow_id = serializers.CharField(help_text="wf_…")
    workflow = serializers.CharField(help_text="the workflow's slug when the run was made")
    version_id = serializers.CharField(help_text="wfv_…")
    version = serializers.IntegerField()
    environment = serializers.CharField(allow_null=True, help_text="null for a test run of the latest version")
    status = serializers.ChoiceField(choices=Status.choices)
    channel = serializers.ChoiceField(choices=Channel.choices)
    actor = serializers.CharField()
    session = serializers.CharField(allow_null=True, help_text="ses_…")
    # A declared field, taken off the class by DRF's metaclass: Field.parent (which the stubs see overridden) is untouched.
    parent = serializers.CharField(allow_null=True, help_text="the run whose sub-workflow node started this one")  # type: ignore[assignment]
    inputs = serializers.DictField()
    outputs = serializers.DictField(allow_null=True)
    error = serializers.DictField(allow_null=True)
    recovery = serializers.ListField(child=serializers.DictField(), help_text="fallbacks taken")
    inline = serializers.BooleanField(help_text="run in the web process rather than by a worker")
    attempt = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    duration_ms = serializers.FloatField(allow_null=True)
    steps = serializers.ListField(
        child=serializers.DictField(), required=False, help_text="per-node steps with timings (not in lists)"
    )


class ExecutionListSerializer(serializers.Serializer):
    count = serializers.IntegerField(help_text="every matching execution, not only this page")
    results = ExecutionSerializer(many=True)


class SuiteCaseSerializer(serializers.Serializer):
    name = serializers.CharField()
    suite = serializers.CharField()
    status = serializers.ChoiceField(choices=["passed", "failed"])
    execution_id = serializers.CharField()
    run_status = serializers.ChoiceField(choices=Status.choices)
    outputs = serializers.DictField(allow_null=True)
    failures = serializers.ListField(child=serializers.CharField())


class SuiteResultSerializer(serializers.Serializer):
    workflow = serializers.CharField()
    version = serializers.IntegerField()
    suite = serializers.CharField(allow_null=True, help_text="null: every suite")
    passed = serializers.IntegerField()
    failed = serializers.IntegerField()
    total = serializers.IntegerField()
    cases = SuiteCaseSerializer(many=True)


class SessionSerializer(serializers.Serializer):
    """apps/nexus_sessions/representation.py `session_data`."""

    id = serializers.CharField(help_text="ses_…")
    user = serializers.CharField(allow_blank=True)
    metadata = serializers.DictField()
    created_by = serializers.CharField()
    created_at = serializers.DateTimeField()
    last_seen_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField(help_text="when it expires unless used again")


class SessionExecutionsSerializer(ExecutionListSerializer):
    session = serializers.CharField(help_text="ses_…")


class DatasetColumnSerializer(serializers.Serializer):
    name = serializers.CharField()
    type = serializers.CharField()
    nullable = serializers.BooleanField()


class DatasetSerializer(serializers.Serializer):
    """apps/datasets/representation.py `dataset_data`."""

    id = serializers.CharField()
    name = serializers.CharField()
    description = serializers.CharField(allow_blank=True)
    columns = DatasetColumnSerializer(many=True)
    row_count = serializers.IntegerField()
    size_bytes = serializers.IntegerField()
    created_by = serializers.CharField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    preview = serializers.ListField(child=serializers.DictField(), required=False, help_text="the first rows (show only)")


class DatasetListSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    results = DatasetSerializer(many=True)


class RowsSerializer(serializers.Serializer):
    count = serializers.IntegerField(help_text="rows in the dataset")
    limit = serializers.IntegerField()
    offset = serializers.IntegerField()
    results = serializers.ListField(child=serializers.DictField())


class QueryResultSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    results = serializers.ListField(child=serializers.DictField())


class ArtifactSerializer(serializers.Serializer):
    """apps/artifacts/representation.py `artifact_data`."""

    id = serializers.CharField()
    name = serializers.CharField()
    content_type = serializers.CharField()
    size = serializers.IntegerField()
    sha256 = serializers.CharField()
    execution_id = serializers.CharField(allow_null=True)
    node_id = serializers.CharField(allow_null=True)
    created_at = serializers.DateTimeField()


class ArtifactListSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    results = ArtifactSerializer(many=True)
