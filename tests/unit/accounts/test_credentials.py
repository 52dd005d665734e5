"""One credential extractor for every door: `X-API-Key` wins over `Authorization: Bearer …`, then (sockets) `?token=`."""

from apps.accounts.credentials import asgi_headers, credential_from_headers


def test_the_key_header_wins_over_the_bearer_header():
    assert credential_from_headers({"authorization": "Bearer jwt.a.b", "x-api-key": " nxk_key "}) == "nxk_key"
    assert credential_from_headers({"authorization": "bearer nxk_abc", "x-api-key": ""}) == "nxk_abc"
    assert credential_from_headers({"authorization": "Basic dXNlcjpwdw=="}) == ""
    assert credential_from_headers({}) == ""


def test_asgi_header_pairs_are_read_by_lower_case_name():
    assert asgi_headers([(b"X-API-Key", b"nxk_a"), (b"host", b"h")]) == {"x-api-key": "nxk_a", "host": "h"}

