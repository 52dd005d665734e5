"""The server refuses what its OpenAPI schema refuses (and the schema says so): a JSON value of another type, an
empty query filter, an unknown audit cursor, a blank where a value is needed; each refusal names the field."""

import pytest

pytestmark = pytest.mark.django_db


def _schema(api) -> dict:
    return api().get("/api/schema/", format="json").json()


def test_a_number_where_a_string_is_documented_is_refused(api, acme):
    from apps.nexus_sessions.models import Session

    before = Session.objects.count()
    response = api().post("/api/v1/sessions/", {"user": 0, "metadata": {}})
    assert response.status_code == 400
    assert response.json()["fields"] == {"user": "must be a string"}
    assert Session.objects.count() == before
    assert api().post("/api/v1/sessions/", {"user": "ada", "metadata": []}).json()["fields"] == {"metadata": "must be an object"}


def test_other_json_types_are_refused_by_name(api):
    rate = api().post("/api/v1/apps/", {"name": "typed", "rate_limit_per_minute": "5"})
    assert (rate.status_code, rate.json()["fields"]) == (400, {"rate_limit_per_minute": "must be an integer"})
    events = api().post("/api/v1/apps/", {"name": "typed", "webhook_events": ["execution.*", 3]})
    assert events.json()["fields"] == {"webhook_events": "item 1 must be a string"}
    wait = api().post("/api/v1/workflows/nope/test/", {"inputs": {}, "suite": 1})
    assert wait.json()["fields"] == {"suite": "must be a string"}


@pytest.mark.parametrize(("path", "field"), [("/api/v1/executions/", "workflow"), ("/api/v1/artifacts/", "execution")])
def test_an_empty_filter_is_refused_not_ignored(api, path, field):
    response = api().get(path, **{field: ""})
    assert response.status_code == 400
    assert response.json()["fields"] == {field: "must not be empty"}
    assert api().get(path, limit="").json()["fields"] == {"limit": "must not be empty"}


def test_an_unknown_audit_cursor_is_not_found_and_an_impossible_date_is_refused(api):
    unknown = api().get("/api/v1/audit/", since="aud_" + "0" * 26)
    assert unknown.status_code == 404
    assert unknown.json()["fields"] == {"since": "no audit event 'aud_00000000000000000000000000'"}
    impossible = api().get("/api/v1/audit/", since="2026-02-30")
    assert impossible.status_code == 400
    assert set(impossible.json()["fields"]) == {"since"}


def test_the_schema_states_the_rules(api):
    components = _schema(api)["components"]["schemas"]
    assert components["WorkflowCreate"]["additionalProperties"] is False
    assert components["WorkflowCreate"]["not"] == {"required": ["definition", "template"]}
    assert components["WorkflowUpdate"]["properties"]["name"]["minLength"] == 1
    assert "required" in components["SessionUpdate"]  # a PATCH body as declared, not a "Patched" copy
    assert components["ApplicationUpdate"]["minProperties"] == 1
    assert components["ApplicationRotate"]["properties"]["credentials"]["minItems"] == 1
    assert components["Refresh"]["properties"]["refresh"]["minLength"] == 1
    assert components["DatasetQuery"]["properties"]["limit"] == {
        "type": "integer",
        "minimum": 1,
        "maximum": 10000,
        "default": 1000,
        "description": "1 to 10000",
    }
    assert "additionalProperties" not in components["SessionCreate"]  # unknown fields are ignored there, as documented
