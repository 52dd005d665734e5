"""The JSON answers outside DRF come from one place: the challenge on a 401, Retry-After on a 429, Allow on a 405."""

import json

from apps.core.errors import ApplicationError, NotAuthenticated, RateLimited
from apps.core.http import error_json, method_not_allowed


def test_a_401_carries_the_challenge():
    response = error_json(NotAuthenticated("authentication credentials were not provided"))
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="nexus"'
    assert json.loads(response.content) == {"detail": "authentication credentials were not provided", "code": "not_authenticated"}


def test_any_error_can_be_answered_as_a_401():
    response = error_json(ApplicationError("invalid API key", code="invalid_credential"), status=401)
    assert (response.status_code, response["WWW-Authenticate"]) == (401, 'Bearer realm="nexus"')


def test_a_429_says_when_to_retry():
    response = error_json(RateLimited("slow down", retry_after=7))
    assert (response.status_code, response["Retry-After"]) == (429, "7")
    assert not response.has_header("WWW-Authenticate")


def test_a_405_names_the_allowed_method():
    response = method_not_allowed("PUT", allowed="POST")
    assert (response.status_code, response["Allow"]) == (405, "POST")
    assert json.loads(response.content) == {"detail": "method PUT not allowed", "code": "method_not_allowed"}
