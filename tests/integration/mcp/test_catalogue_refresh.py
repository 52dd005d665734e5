"""The MCP tool catalogue is cached per tenant schema; a deployment made in this process shows at once."""

import pytest

from apps.mcp_bridge.tools import tool_list
from apps.workflows.services import workflow_create, workflow_delete, workflow_deploy

pytestmark = pytest.mark.django_db


def _workflow_tools(principal, tenant) -> list[str]:
    return sorted(tool.name for tool in tool_list(principal=principal, tenant=tenant) if tool.name.startswith("workflow_"))


def test_a_deployment_shows_in_the_catalogue_at_once(acme, principal, hello):
    # given the catalogue listed (and cached) with hello-world alone
    owner = principal()
    assert _workflow_tools(owner, acme) == ["workflow_hello-world"]

    # when another workflow is deployed in this process
    workflow_create(principal=owner, tenant_id=acme.pk, slug="second", template="basic")
    workflow_deploy(principal=owner, tenant_id=acme.pk, ref="second")

    # then the next listing has its tool, without waiting for NEXUS_DEPLOYMENT_CACHE_S
    assert _workflow_tools(owner, acme) == ["workflow_hello-world", "workflow_second"]


def test_a_deleted_workflow_leaves_the_catalogue_at_once(acme, principal, hello):
    owner = principal()
    assert _workflow_tools(owner, acme) == ["workflow_hello-world"]

    workflow_delete(principal=owner, tenant_id=acme.pk, ref="hello-world")

    assert _workflow_tools(owner, acme) == []
