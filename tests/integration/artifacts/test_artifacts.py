"""Artifacts: stored by runs through the port, listed and downloaded over the API and the CLI, never across tenants."""

import hashlib
import json

import pytest
from django.db import connection

from apps.artifacts.models import Artifact
from apps.artifacts.ports import ArtifactsPort
from apps.core.principal import Principal
from apps.engine import NodeError

pytestmark = pytest.mark.django_db

SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'


def _store(tenant, execution_id: str | None, name: str, content_type: str, data: bytes) -> dict:
    connection.set_tenant(tenant)
    stored = ArtifactsPort(execution_id=execution_id).store(name=name, content_type=content_type, data=data)
    connection.set_schema_to_public()
    return stored


def _count(tenant) -> int:
    connection.set_tenant(tenant)
    count = Artifact.objects.count()
    connection.set_schema_to_public()
    return count


def test_the_port_stores_and_loads(acme):
    port = ArtifactsPort(execution_id="run_0000000000000000000000000a")
    stored = port.store(name="chart.svg", content_type="image/svg+xml", data=SVG)
    assert stored == {
        "id": stored["id"],
        "name": "chart.svg",
        "content_type": "image/svg+xml",
        "size": len(SVG),
        "sha256": hashlib.sha256(SVG).hexdigest(),
    }
    assert stored["id"].startswith("art_") and len(stored["id"]) == 30
    assert port.load(stored["id"]) == ("chart.svg", "image/svg+xml", SVG)
    artifact = Artifact.objects.get(id=stored["id"])
    assert artifact.execution_id == "run_0000000000000000000000000a" and bytes(artifact.data) == SVG
    text = port.store(name="report.csv", content_type="text/csv", data="a,b\n1,2\n")
    assert port.load(text["id"])[2] == b"a,b\n1,2\n"


@pytest.mark.parametrize(
    ("name", "content_type", "data", "fields"),
    [
        ("../etc/passwd", "text/plain", b"x", "name"),
        ("a\\b.txt", "text/plain", b"x", "name"),
        ("", "text/plain", b"x", "name"),
        ("..", "text/plain", b"x", "name"),
        ("x" * 201, "text/plain", b"x", "name"),
        ("line\nbreak.txt", "text/plain", b"x", "name"),
        ("page.html", "text/html", b"<p>", "content_type"),
        ("data.bin", "application/octet-stream", b"x", "content_type"),
        ("n.txt", "text/plain", 12, "data"),
    ],
)
def test_the_port_refuses_bad_artifacts_and_stores_nothing(acme, name, content_type, data, fields):
    with pytest.raises(NodeError) as raised:
        ArtifactsPort().store(name=name, content_type=content_type, data=data)
    assert raised.value.code == "invalid" and f"({fields}: " in raised.value.message and raised.value.retryable is False
    assert Artifact.objects.count() == 0


def test_the_size_cap_comes_from_settings(acme, settings):
    settings.NEXUS_ARTIFACT_MAX_BYTES = 4
    port = ArtifactsPort()
    assert port.store(name="ok.txt", content_type="text/plain", data=b"1234")["size"] == 4
    with pytest.raises(NodeError) as raised:
        port.store(name="big.txt", content_type="text/plain", data=b"12345")
    assert raised.value.message == "artifact larger than 4 bytes (data: at most 4 bytes)"
    assert list(Artifact.objects.values_list("name", flat=True)) == ["ok.txt"]


def test_load_of_a_missing_artifact_is_a_node_error(acme):
    with pytest.raises(NodeError) as raised:
        ArtifactsPort().load("art_nope")
    assert raised.value.code == "artifact_not_found" and raised.value.message == "artifact 'art_nope' does not exist"


def test_a_principals_port_names_the_tenant_it_stores_in(acme):
    """Asked for directly, the port stores (and audits) in the caller's tenant, which it is told, not guessed."""
    owner = Principal(kind="user", actor="user:ann", tenant_id=acme.pk, tenant_slug=acme.slug, role="owner")
    with pytest.raises(TypeError, match="pass principal and tenant_id together"):
        ArtifactsPort(principal=owner)
    with pytest.raises(TypeError, match="pass principal and tenant_id together"):
        ArtifactsPort(tenant_id=acme.pk)
    stored = ArtifactsPort(principal=owner, tenant_id=acme.pk, source="test").store(
        name="a.txt", content_type="text/plain", data=b"hi"
    )
    assert list(Artifact.objects.values_list("id", "name")) == [(stored["id"], "a.txt")]


def test_list_show_and_download_over_the_api(api, nexus_world):
    acme = nexus_world["tenants"]["acme"]
    chart = _store(acme, "run_a", "chart.svg", "image/svg+xml", SVG)
    report = _store(acme, "run_b", "report.pdf", "application/pdf", b"%PDF-1.4 fake")
    viewer = api(role="viewer")

    listing = viewer.get("/api/v1/artifacts/").json()
    assert listing["count"] == 2 and [a["id"] for a in listing["results"]] == [report["id"], chart["id"]]
    assert set(listing["results"][0]) == {"id", "name", "content_type", "size", "sha256", "execution_id", "node_id", "created_at"}
    only_a = viewer.get("/api/v1/artifacts/", execution="run_a").json()
    assert [a["id"] for a in only_a["results"]] == [chart["id"]] and only_a["count"] == 1

    shown = viewer.get(f"/api/v1/artifacts/{chart['id']}/").json()
    assert shown["name"] == "chart.svg" and shown["size"] == len(SVG) and shown["execution_id"] == "run_a"

    download = viewer.get(f"/api/v1/artifacts/{chart['id']}/download/")
    assert download.status_code == 200
    assert download.content == SVG
    assert download["Content-Type"] == "image/svg+xml"
    assert download["Content-Length"] == str(len(SVG))
    assert download["Content-Disposition"] == 'attachment; filename="chart.svg"'
    assert download["X-Content-Type-Options"] == "nosniff"
    assert download["Content-Security-Policy"] == "default-src 'none'; sandbox"

    pdf = viewer.get(f"/api/v1/artifacts/{report['id']}/download/")
    assert pdf.content == b"%PDF-1.4 fake" and pdf["Content-Type"] == "application/pdf"


def test_unusual_names_are_safe_in_the_download_header(api, nexus_world):
    acme = nexus_world["tenants"]["acme"]
    quoted = _store(acme, None, 'say "hi".txt', "text/plain", b"hi")
    accented = _store(acme, None, "café report.txt", "text/plain", b"ok")
    owner = api()
    assert (
        owner.get(f"/api/v1/artifacts/{quoted['id']}/download/")["Content-Disposition"]
        == 'attachment; filename="say \\"hi\\".txt"'
    )
    assert (
        owner.get(f"/api/v1/artifacts/{accented['id']}/download/")["Content-Disposition"]
        == "attachment; filename*=utf-8''caf%C3%A9%20report.txt"
    )


def test_another_tenant_gets_404_for_the_artifact(api, nexus_world):
    chart = _store(nexus_world["tenants"]["acme"], "run_a", "chart.svg", "image/svg+xml", SVG)
    globex = api(tenant="globex")
    assert globex.get("/api/v1/artifacts/").json() == {"count": 0, "results": []}
    for path in (f"/api/v1/artifacts/{chart['id']}/", f"/api/v1/artifacts/{chart['id']}/download/"):
        response = globex.get(path)
        assert response.status_code == 404
        assert response.json() == {"detail": f"artifact '{chart['id']}' does not exist", "code": "artifact_not_found"}
        assert SVG not in response.content
    assert api(key=None).get(f"/api/v1/artifacts/{chart['id']}/download/").status_code == 401


def test_list_does_not_query_per_artifact_or_load_bytes(api, nexus_world, django_assert_num_queries):
    acme = nexus_world["tenants"]["acme"]
    for index in range(5):
        _store(acme, "run_a", f"part-{index}.txt", "text/plain", b"x" * 1000)
    owner = api()
    owner.get("/api/v1/artifacts/")  # the key is looked up once, then cached
    connection.queries_log.clear()  # each request empties the log as it starts: count from an empty one
    with django_assert_num_queries(2) as captured:  # count, then the page
        assert len(owner.get("/api/v1/artifacts/").json()["results"]) == 5
        page_sql = captured.captured_queries[-1]["sql"]
    assert '"data"' not in page_sql


def test_list_page_limits_are_checked(api):
    response = api().get("/api/v1/artifacts/", limit=0)
    assert response.status_code == 400 and "limit" in response.json()["fields"]


def test_cli_list_and_get(nexus, nexus_world, tmp_path):
    acme = nexus_world["tenants"]["acme"]
    chart = _store(acme, "run_a", "chart.svg", "image/svg+xml", SVG)
    _store(acme, "run_b", "notes.txt", "text/plain", b"notes")

    code, out, err = nexus("--tenant=acme", "artifact", "list", "--execution=run_a", "--json")
    assert code == 0, err
    listed = json.loads(out)
    assert listed["count"] == 1 and [a["id"] for a in listed["artifacts"]] == [chart["id"]]

    target = tmp_path / "out.svg"
    code, out, err = nexus("--tenant=acme", "artifact", "get", chart["id"], f"--output={target}", "--json")
    assert code == 0, err
    shown = json.loads(out)
    assert shown["sha256"] == hashlib.sha256(SVG).hexdigest() and shown["output"] == str(target)
    assert target.read_bytes() == SVG

    code, out, _ = nexus("--tenant=acme", "artifact", "list")
    assert code == 0 and "chart.svg" in out and "notes.txt" in out and "{" not in out
    code, out, _ = nexus("--tenant=acme", "artifact", "get", chart["id"])
    assert code == 0 and "chart.svg" in out and "image/svg+xml" in out


def test_cli_errors(nexus, nexus_world, tmp_path):
    chart = _store(nexus_world["tenants"]["acme"], None, "chart.svg", "image/svg+xml", SVG)
    code, out, err = nexus("--tenant=globex", "artifact", "get", chart["id"], "--json")
    assert code == 3 and out == "" and json.loads(err)["error"]["code"] == "artifact_not_found"
    code, out, err = nexus("--tenant=acme", "artifact", "get", chart["id"], f"--output={tmp_path}/missing/dir/x.svg")
    assert code == 2 and out == "" and "cannot write" in err
    assert _count(nexus_world["tenants"]["acme"]) == 1
