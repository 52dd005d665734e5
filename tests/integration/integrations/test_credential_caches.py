"""Resolved credentials are cached per process and forgotten by topic (apps/core/cache.py): a tenant's change
ends its OAuth2 tokens, keys and logins at once in the process that made it, and again once it commits."""

import pytest

from apps.accounts.selectors import hash_key, oauth_token_cache, principal_from_credential
from apps.core.cache import TTLCache
from apps.core.errors import NotAuthenticated
from apps.core.principal import Principal
from apps.tenants.services import tenant_suspend, tenant_update

pytestmark = pytest.mark.django_db


@pytest.fixture
def platform_admin(nexus_world):
    acme = nexus_world["tenants"]["acme"]
    return Principal(
        kind="user", actor="user:platform-admin", tenant_id=acme.pk, tenant_slug="acme", role="owner", is_platform_admin=True
    )


def test_suspending_a_tenant_ends_its_cached_oauth_tokens_at_once(register, token_for, platform_admin):
    # given an application's token, resolved once: cached for NEXUS_AUTH_CACHE_S
    app = register(name="cached")
    token = token_for(app)
    assert principal_from_credential(token)[0].application_id == app["id"]
    assert oauth_token_cache.get(hash_key(token)) is not None

    # when its tenant is suspended in this process
    tenant_suspend(principal=platform_admin, slug="acme")

    # then the cached token is gone and the token is refused (the query only matches active tenants)
    assert oauth_token_cache.get(hash_key(token)) is None
    with pytest.raises(NotAuthenticated, match="invalid or expired token"):
        principal_from_credential(token)


def test_suspending_a_tenant_ends_its_cached_api_keys_at_once(nexus_world, platform_admin):
    raw = nexus_world["keys"][("acme", "owner")]
    assert principal_from_credential(raw)[1].slug == "acme"

    tenant_suspend(principal=platform_admin, slug="acme")

    with pytest.raises(NotAuthenticated, match="invalid API key"):
        principal_from_credential(raw)


def test_a_tenant_change_is_forgotten_again_once_it_commits(platform_admin, django_capture_on_commit_callbacks):
    # given a cache on the tenants topic
    cache = TTLCache(ttl_s=60, topics=("tenants",))
    cache.set("acme", "before")

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        tenant_update(principal=platform_admin, slug="acme", plan="gold")
        # a request served between the change and its commit caches what it read
        cache.set("acme", "read before the commit")

    # then the commit forgot it again
    assert len(callbacks) >= 1
    assert cache.get("acme") is None
