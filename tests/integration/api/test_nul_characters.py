"""NUL characters anywhere in a request are a 400 naming where, never a 500 from PostgreSQL, and store nothing."""

import pytest

from apps.nexus_sessions.models import Session
from apps.runs.models import Execution

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/workflows/wf%00x/",
        "/api/v1/executions/run%00x/",
        "/api/v1/sessions/ses%00x/",
        "/api/v1/datasets/d%00x/",
        "/api/v1/artifacts/art%00x/",
        "/api/v1/apps/app%00x/",
    ],
)
def test_a_nul_in_the_path_is_refused(api, path):
    response = api().get(path)
    assert response.status_code == 400
    assert response.json() == {
        "detail": "the request path contains a NUL character",
        "code": "invalid_characters",
        "fields": {"path": "contains NUL"},
    }


def test_a_nul_in_the_query_string_is_refused(api):
    response = api().get("/api/v1/executions/?workflow=a%00b")
    assert response.status_code == 400 and response.json()["fields"] == {"query": "contains NUL"}


def test_a_nul_in_a_json_body_names_the_field_and_stores_nothing(api, owner, acme):
    from apps.workflows.services import workflow_create, workflow_deploy

    workflow_create(principal=owner, tenant_id=acme.pk, slug="hello", template="basic")
    workflow_deploy(principal=owner, tenant_id=acme.pk, ref="hello")
    created = api().post("/api/v1/sessions/", {"user": "a\x00b", "metadata": {}})
    assert created.status_code == 400
    assert created.json()["code"] == "invalid_characters" and created.json()["fields"] == {"user": "contains a NUL character"}
    nested = api().post("/api/v1/sessions/", {"user": "u", "metadata": {"tags": ["ok", "b\x00d"]}})
    assert nested.json()["fields"] == {"metadata.tags[1]": "contains a NUL character"}
    executed = api().post("/api/v1/workflows/hello/execute/", {"inputs": {"name": "x\u0000y"}})
    assert executed.status_code == 400 and executed.json()["fields"] == {"inputs.name": "contains a NUL character"}
    # A literal backslash-u sequence is text like any other.
    literal = api().post("/api/v1/sessions/", {"user": "\\u0000", "metadata": {}})
    assert literal.status_code == 201 and literal.json()["user"] == "\\u0000"
    assert Execution.objects.count() == 0 and list(Session.objects.values_list("user", flat=True)) == ["\\u0000"]
