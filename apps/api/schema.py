"""OpenAPI postprocessing: the execute hot path (a plain Django view), and the answers every operation shares.

Every operation that takes a credential may answer 401 (no, wrong or revoked credential) and 429 (rate limited,
apps/ratelimit: `Retry-After` and `RateLimit-*` headers), and carries the `RateLimit-*` headers on its other
answers; the login endpoints may answer 429 after too many failed attempts. Those are added here once, so no
view can forget them.
"""

from typing import Any

from drf_spectacular.drainage import get_override
from rest_framework import serializers

from apps.api.serializers import ExecuteSerializer
from apps.runs.models import Status

ERROR = {"$ref": "#/components/schemas/Error"}
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")

_INTEGER = {"type": "integer", "minimum": 0}
RATE_LIMIT_HEADERS = {
    "RateLimit-Limit": {"description": "Requests allowed in the window (the tightest limit that applies).", "schema": _INTEGER},
    "RateLimit-Remaining": {"description": "Requests left in the window.", "schema": _INTEGER},
    "RateLimit-Reset": {"description": "Seconds until the window has fully refilled.", "schema": _INTEGER},
}
RETRY_AFTER = {
    "description": "Seconds to wait before the same request is accepted.",
    "required": True,
    "schema": _INTEGER,
}
LIMITED_HEADERS = {"Retry-After": RETRY_AFTER, **RATE_LIMIT_HEADERS}
# A Nexus credential (apps/api/authentication.py); the OAuth2 endpoints take an application's client secret instead.
NEXUS_SCHEMES = frozenset({"BearerAuth", "ApiKeyAuth"})
# Endpoints that take a password or a client secret: failed attempts are throttled (apps/ratelimit/middleware.py).
THROTTLED_PATHS = frozenset({"/api/v1/auth/token/", "/oauth/token/", "/oauth/introspect/", "/oauth/revoke_token/"})
EXECUTION_RESULT = {
    "type": "object",
    "description": "A run of a deployed workflow: its outputs in `result` once it finished.",
    "properties": {
        "execution_id": {"type": "string", "description": "run_…"},
        "status": {"type": "string", "enum": list(Status.values)},
        "result": {"type": "object", "nullable": True, "description": "the workflow's outputs; null until it completes"},
        "error": {"type": "object", "description": "why it failed (only when it did)"},
        "workflow": {"type": "string", "description": "the workflow's slug"},
        "version": {"type": "integer"},
        "duration_ms": {"type": "number", "nullable": True},
        "wait": {
            "type": "string",
            "enum": ["capped"],
            "description": "only when the caller asked to wait but was not kept waiting: too many callers already "
            "wait on runs (NEXUS_WAIT_MAX_PER_PROCESS, NEXUS_WAIT_MAX_PER_TENANT); follow the run by its id",
        },
    },
    "required": ["execution_id", "status", "result", "workflow", "version", "duration_ms"],
}


def _error(description: str, headers: dict | None = None) -> dict:
    response = {"description": description, "content": {"application/json": {"schema": ERROR}}}
    if headers:
        response["headers"] = headers
    return response


def _body_schema(serializer: serializers.Serializer) -> dict:
    """The OpenAPI schema of a plain view's JSON body, from the serializer that validates it."""
    properties = {}
    for name, field in serializer.fields.items():
        if isinstance(field, serializers.BooleanField):
            prop: dict[str, Any] = {"type": "boolean"}
        elif isinstance(field, serializers.CharField):
            prop = {"type": "string"} if field.allow_blank else {"type": "string", "minLength": 1}
        else:
            prop = dict(get_override(field, "field"))
        if field.allow_null:
            prop["nullable"] = True
        if field.help_text:
            prop["description"] = str(field.help_text)
        if field.default is not serializers.empty and not callable(field.default):
            prop["default"] = field.default
        properties[name] = prop
    return {"type": "object", "additionalProperties": False, "properties": properties}


def _execute_operation() -> dict:
    result = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/ExecutionResult"}}}}
    return {
        "operationId": "workflows_execute",
        "summary": "Run the workflow deployed to an environment",
        "tags": ["workflows"],
        "parameters": [
            {
                "name": "ref",
                "in": "path",
                "required": True,
                "schema": {"type": "string"},
                "description": "Workflow id (wf_…) or slug",
            }
        ],
        "requestBody": {"content": {"application/json": {"schema": _body_schema(ExecuteSerializer())}}},
        "responses": {
            "200": {"description": "The run finished (completed, failed, …)", **result},
            "202": {
                "description": "Accepted: the run is queued or still running (wait=false, the wait ran out or was capped)",
                **result,
            },
            "400": _error("Malformed body, unknown field, invalid inputs or unknown session"),
            "403": _error("The role or scopes do not allow running workflows"),
            "404": _error("No such workflow in the tenant"),
            "409": _error("The workflow is not deployed to that environment"),
        },
        "security": [{"BearerAuth": []}, {"ApiKeyAuth": []}],
    }


def postprocess_schema(result, generator, request, public):
    components = result.setdefault("components", {}).setdefault("schemas", {})
    if "Error" not in components:  # defined by apps/api/serializers.py ErrorSerializer, which every view documents
        raise ValueError("the OpenAPI schema has no Error component: document an error with ErrorSerializer")
    components["ExecutionResult"] = EXECUTION_RESULT
    paths = result.setdefault("paths", {})
    paths["/api/v1/workflows/{ref}/execute/"] = {"post": _execute_operation()}
    for path, item in paths.items():
        for method in HTTP_METHODS:
            operation = item.get(method)
            if operation is not None:
                _add_shared_answers(path, operation)
    return result


def _add_shared_answers(path: str, operation: dict) -> None:
    responses = operation.setdefault("responses", {})
    credentialed = any(NEXUS_SCHEMES & set(requirement) for requirement in operation.get("security", []))
    if credentialed:
        responses.setdefault("401", _error("No credential, or a wrong, expired or revoked one"))
        for status, response in responses.items():
            if status not in ("401", "429"):
                response.setdefault("headers", {}).update(RATE_LIMIT_HEADERS)
        responses.setdefault("429", _error("Rate limited: retry after `Retry-After` seconds", LIMITED_HEADERS))
    elif path in THROTTLED_PATHS:
        responses.setdefault("429", _error("Too many failed attempts: retry after `Retry-After` seconds", LIMITED_HEADERS))
