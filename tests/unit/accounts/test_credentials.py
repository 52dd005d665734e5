"""One credential extractor for every door: `X-API-Key` wins over `Authorization: Bearer …`, then (sockets) `?token=`."""

from apps.accounts.credentials import asgi_headers, credential_from_headers
from apps.realtime.auth import credential_from_scope


def test_the_key_header_wins_over_the_bearer_header():
    assert credential_from_headers({"authorization": "Bearer jwt.a.b", "x-api-key": " nxk_key "}) == "nxk_key"
    assert credential_from_headers({"authorization": "bearer nxk_abc", "x-api-key": ""}) == "nxk_abc"
    assert credential_from_headers({"authorization": "Basic dXNlcjpwdw=="}) == ""
    assert credential_from_headers({}) == ""


def test_asgi_header_pairs_are_read_by_lower_case_name():
    assert asgi_headers([(b"X-API-Key", b"nxk_a"), (b"host", b"h")]) == {"x-api-key": "nxk_a", "host": "h"}


def test_a_socket_takes_the_key_header_first_then_the_bearer_then_the_query_token():
    both = [(b"authorization", b"Bearer jwt.a.b"), (b"x-api-key", b"nxk_key")]
    assert credential_from_scope({"headers": both, "query_string": b"token=t"}) == "nxk_key"
    bearer = [(b"authorization", b"Bearer jwt.a.b")]
    assert credential_from_scope({"headers": bearer, "query_string": b"token=t"}) == "jwt.a.b"
    assert credential_from_scope({"headers": [], "query_string": b"token=nxk_q"}) == "nxk_q"
    assert credential_from_scope({"headers": [], "query_string": b""}) == ""
