"""The OpenAPI schema and the Swagger UI page: readable without a credential, built only from this server's own files,
and closed again by NEXUS_API_DOCS_PUBLIC=false."""

import re

import pytest

pytestmark = pytest.mark.django_db

# Every URL the page or its start script names: src/href attributes and quoted absolute URLs.
URL_RE = re.compile(r"""(?:src|href)="([^"]*)"|["'](https?://[^"']*)["']""")


def _urls(text: str) -> list[str]:
    return [first or second for first, second in URL_RE.findall(text)]


def test_the_schema_and_the_docs_need_no_credential(api):
    anonymous = api(key=None)
    schema = anonymous.get("/api/schema/", format="json")
    assert schema.status_code == 200
    assert schema.json()["info"]["title"] == "Nexus API"
    assert {"BearerAuth", "ApiKeyAuth"} <= set(schema.json()["components"]["securitySchemes"])  # the Authorize button
    page = anonymous.get("/api/docs/")
    assert page.status_code == 200
    assert page["Content-Type"].startswith("text/html")


def test_the_docs_page_loads_only_this_servers_files(client, api):
    page = api(key=None).get("/api/docs/").content.decode()
    urls = _urls(page)
    assert urls  # the stylesheet, favicon, two bundles and the start script
    assert all(url.startswith(("/static/drf_spectacular_sidecar/", "/api/docs/?script")) for url in urls), urls
    assert "<script>" not in page  # no inline script: the production CSP's script-src 'self' holds
    script = api(key=None).get("/api/docs/?script=")
    assert script.status_code == 200
    assert script["Content-Type"].startswith("application/javascript")
    text = script.content.decode()
    assert '"/api/schema/"' in text
    assert not [url for url in _urls(text) if url.startswith("http")]
    assert '"validatorUrl": null' in text  # no badge fetched from validator.swagger.io
    for url in urls:
        if url.startswith("/static/"):
            response = client.get(url)
            assert response.status_code == 200, url
            assert b"".join(response.streaming_content if response.streaming else [response.content]), url


def test_a_credential_still_works_on_the_docs(api):
    assert api().get("/api/schema/", format="json").status_code == 200
    assert api(key="nxk_deadbeef_nope").get("/api/schema/", format="json").status_code == 401  # wrong is wrong


def test_the_setting_closes_the_schema_and_the_docs(api, settings):
    settings.NEXUS_API_DOCS_PUBLIC = False
    for path in ("/api/schema/", "/api/docs/", "/api/docs/?script="):
        response = api(key=None).get(path)
        assert response.status_code == 401, path
        assert response.json()["code"] == "not_authenticated"
    assert api().get("/api/schema/", format="json").status_code == 200
    assert api().get("/api/docs/").status_code == 200


def test_the_schema_is_built_once_per_process_not_per_anonymous_request(api, monkeypatch):
    from apps.api.docs import SchemaView

    builds = []
    generator = SchemaView.generator_class

    class Counting(generator):
        def get_schema(self, *args, **kwargs):
            builds.append(1)
            return super().get_schema(*args, **kwargs)

    monkeypatch.setattr(SchemaView, "generator_class", Counting)
    monkeypatch.setattr(SchemaView, "built", {})
    anonymous = api(key=None)
    first, second = (anonymous.get("/api/schema/", format="json") for _ in range(2))
    assert (first.status_code, second.status_code) == (200, 200)
    assert first.json() == second.json() and first.json()["paths"]
    assert builds == [1]
