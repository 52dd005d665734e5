"""OpenAPI additions for the endpoints served by plain Django views (the execute hot path)."""

_ERROR = {"$ref": "#/components/schemas/Error"}


def add_plain_views(result, generator, request, public):
    paths = result.setdefault("paths", {})
    components = result.setdefault("components", {}).setdefault("schemas", {})
    components.setdefault(
        "Error",
        {
            "type": "object",
            "properties": {
                "detail": {"type": "string"},
                "code": {"type": "string"},
                "fields": {"type": "object", "additionalProperties": {"type": "string"}},
            },
            "required": ["detail", "code"],
        },
    )
    error = {"description": "Error: {detail, code, fields}", "content": {"application/json": {"schema": _ERROR}}}
    paths["/api/v1/workflows/{ref}/execute/"] = {
        "post": {
            "operationId": "workflows_execute",
            "summary": "Run the workflow deployed to an environment",
            "tags": ["v1"],
            "parameters": [
                {
                    "name": "ref",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string"},
                    "description": "Workflow id (wf_…) or slug",
                }
            ],
            "requestBody": {
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "additionalProperties": False,
                            "properties": {
                                "inputs": {"type": "object", "description": "Validated against the workflow's input JSON Schema"},
                                "session": {"type": "string", "nullable": True},
                                "wait": {"type": "boolean", "default": True},
                                "environment": {"type": "string", "default": "production"},
                            },
                        }
                    }
                }
            },
            "responses": {
                "200": {
                    "description": "The run finished (completed, failed, …)",
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {
                                    "execution_id": {"type": "string"},
                                    "status": {"type": "string"},
                                    "result": {"type": "object", "nullable": True},
                                    "error": {"type": "object", "nullable": True},
                                    "workflow": {"type": "string"},
                                    "version": {"type": "integer"},
                                    "duration_ms": {"type": "number", "nullable": True},
                                },
                                "required": ["execution_id", "status", "result"],
                            }
                        }
                    },
                },
                "202": {"description": "Accepted: the run is queued or still running (wait=false or wait budget spent)"},
                "400": error,
                "401": error,
                "403": error,
                "404": error,
                "409": error,
            },
            "security": [{"BearerAuth": []}, {"ApiKeyAuth": []}],
        }
    }
    return result
