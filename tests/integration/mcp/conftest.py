"""MCP integration fixtures: principals per role in acme and globex, and a deployed hello-world in acme."""

import pytest

from apps.core.principal import Principal


@pytest.fixture(autouse=True)
def _fresh_tool_cache():
    """Tool lists are cached per schema for a couple of seconds; each test starts from the database."""
    from apps.catalogue.selectors import workflow_tools_cache

    workflow_tools_cache.clear()
    yield
    workflow_tools_cache.clear()


@pytest.fixture
def principal(nexus_world):
    def make(tenant: str = "acme", role: str = "owner") -> Principal:
        found = nexus_world["tenants"][tenant]
        return Principal(kind="api_key", actor=f"apikey:test-{tenant}-{role}", tenant_id=found.pk, tenant_slug=tenant, role=role)

    return make


@pytest.fixture
def hello(acme, principal):
    """hello-world (template basic) created and deployed to production in acme; the connection is on acme."""
    from apps.workflows.services import workflow_create, workflow_deploy

    owner = principal()
    workflow = workflow_create(principal=owner, tenant_id=acme.pk, slug="hello-world", template="basic")
    workflow_deploy(principal=owner, tenant_id=acme.pk, ref="hello-world")
    return workflow
