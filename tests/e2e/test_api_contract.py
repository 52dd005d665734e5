"""The published API contract against a running platform (`nexus up`: HAProxy, granian, daphne, Celery).

- The OpenAPI schema and the Swagger UI page answer without a credential through the public port, and the page
  loads only this server's own files (drf-spectacular-sidecar under /static/, its start script from
  /api/docs/?script): no CDN, so it works on a machine without internet access.
- schemathesis, as a tenant owner, runs every check (positive data accepted, negative data rejected, status codes,
  content types, headers and bodies as documented, authentication not ignored, …) over the examples, the
  schema's boundary cases and random inputs, configured in tests/e2e/schemathesis.toml (where each exception
  says why), and finds nothing.
"""

import re
import subprocess
import urllib.request

import pytest

from tests.e2e.conftest import REPO

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SCHEMATHESIS = str(REPO / ".venv" / "bin" / "schemathesis")
CONFIG = str(REPO / "tests" / "e2e" / "schemathesis.toml")
URL_RE = re.compile(r"""(?:src|href)="([^"]*)"|["'](https?://[^"']*)["']""")


def get(url: str) -> tuple[int, str, bytes]:
    with urllib.request.urlopen(url, timeout=30) as response:  # no credential
        return response.status, response.headers["Content-Type"], response.read()


def test_the_schema_and_the_docs_load_without_a_credential_from_local_files(nexus):
    status, content_type, body = get(f"{nexus.base_url}/api/schema/?format=json")
    assert (status, content_type.split(";")[0]) == (200, "application/vnd.oai.openapi+json")
    status, content_type, page = get(f"{nexus.base_url}/api/docs/")
    assert (status, content_type.split(";")[0]) == (200, "text/html")
    html = page.decode()
    urls = [first or second for first, second in URL_RE.findall(html)]
    assert not [url for url in urls if "://" in url or url.startswith("//")], urls  # nothing from another origin
    assert "<script>" not in html
    assets = [url for url in urls if url.startswith("/static/")]
    assert len(assets) == 4  # stylesheet, favicon, the two Swagger UI bundles
    for url in [*assets, *[url for url in urls if url.startswith("/api/docs/?script")]]:
        status, _, body = get(nexus.base_url + url)
        assert status == 200 and body, url
    _, _, script = get(f"{nexus.base_url}/api/docs/?script=")
    assert "https://" not in script.decode() and "http://" not in script.decode()


def test_schemathesis_with_every_check_finds_no_mismatch(nexus, tmp_path):
    nexus.cli_json("tenant", "create", "contract", "--name", "API contract")
    key = nexus.cli_json("apikey", "create", "--tenant", "contract", "--role", "owner")["key"]
    result = subprocess.run(
        [SCHEMATHESIS, "--config-file", CONFIG, "run", f"{nexus.base_url}/api/schema/", "-H", f"X-API-Key: {key}"]
        + ["--no-color", "--report", "junit", "--report-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-12000:] + result.stderr[-2000:]
    summary = result.stdout.strip().splitlines()[-1]  # "== 3 warnings in 60.12s ==", or "== 2 failures, … =="
    assert "failure" not in summary and "error" not in summary, result.stdout[-12000:]
    tested = re.search(r"(\d+) generated, (\d+) passed", result.stdout)
    assert tested and tested[1] == tested[2] and int(tested[1]) > 1000, result.stdout[-3000:]
