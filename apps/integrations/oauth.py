"""django-oauth-toolkit configured for API applications: the token format, each client's scopes, which clients
may authenticate, and what introspection tells a client about its tokens. Wired in by the OAUTH2_PROVIDER
setting (nexus_site/settings/base.py); the endpoints are apps/api/oauth.py.

Security decisions:

* Tokens are `nxo_` + 256 random bits, so every door tells them from API keys and JWTs by their prefix
  (apps/accounts/selectors.py), and the toolkit stores only their SHA-256 (RFC 9700 token storage).
* A client authenticates only while its application is live: a revoked application's client is unknown to
  the toolkit (token, introspection and revocation requests answer `invalid_client`).
* A client may ask for a subset of its application's scopes (anything else: `invalid_scope`); asking for
  none gets all of them. An application without scopes (no narrowing) may ask for any scope.
* Introspection answers a client only about its own tokens; any other token is `{"active": false}`.
"""

import secrets

from django.core.exceptions import ObjectDoesNotExist
from oauth2_provider.oauth2_validators import OAuth2Validator
from oauth2_provider.scopes import BaseScopes

from apps.accounts.scopes import SCOPE_DESCRIPTIONS, SCOPES
from apps.accounts.selectors import OAUTH_TOKEN_PREFIX
from apps.integrations.models import Application
from apps.integrations.selectors import oauth_token_introspect


def access_token_generate(request) -> str:
    """ACCESS_TOKEN_GENERATOR: called by oauthlib for every token it issues."""
    return OAUTH_TOKEN_PREFIX + secrets.token_urlsafe(32)


def application_of(client) -> Application | None:
    """The live API application behind a toolkit client, or None (none, or revoked). Cached on the client."""
    if client is None:
        return None
    try:
        app = client.nexus_application
    except ObjectDoesNotExist:
        return None
    return app if app.revoked_at is None else None


def client_scopes(client) -> list[str]:
    """The scopes a client may be granted: its application's, or every scope for an application without any."""
    app = application_of(client)
    if app is None:
        return []
    return list(app.scopes) if app.scopes else list(SCOPES)


class ApplicationScopes(BaseScopes):
    """SCOPES_BACKEND_CLASS: the vocabulary of apps/accounts/access.py, available per application."""

    def get_all_scopes(self) -> dict[str, str]:
        return SCOPE_DESCRIPTIONS

    def get_available_scopes(self, application=None, request=None, *args, **kwargs) -> list[str]:
        return client_scopes(application)

    def get_default_scopes(self, application=None, request=None, *args, **kwargs) -> list[str]:
        return client_scopes(application)


class ApplicationValidator(OAuth2Validator):
    """OAUTH2_VALIDATOR_CLASS: the toolkit's validator, refusing clients of revoked applications and answering
    introspection from apps/integrations/selectors.py."""

    def _load_application(self, client_id, request):
        client = super()._load_application(client_id, request)
        if client is not None and application_of(client) is None:
            request.client = None
            return None
        return client

    def introspect_token(self, token, token_type_hint, request, *args, **kwargs):
        return oauth_token_introspect(client=request.client, token=token)
