"""The connection accessor (apps/tenants/connection.py): which schema and tenant the connection is in, and switching."""

import pytest
from django.db import connection

from apps.tenants.connection import (
    NoTenantOnConnection,
    current_owner,
    current_schema,
    current_tenant,
    require_current_tenant,
    use_public,
    use_tenant,
)

pytestmark = pytest.mark.django_db


def test_a_connection_switched_to_a_tenant_is_in_its_schema_with_its_tenant(nexus_world):
    acme = nexus_world["tenants"]["acme"]
    use_public()
    use_tenant(acme)
    assert current_schema() == acme.schema_name
    assert current_tenant() is acme
    assert require_current_tenant() is acme
    assert connection.tenant is acme  # the django-tenants attribute behind it


def test_the_public_schema_and_a_schema_switched_by_name_have_no_tenant(nexus_world):
    globex = nexus_world["tenants"]["globex"]
    use_public()
    assert current_schema() == "public"
    assert current_tenant() is None
    with pytest.raises(NoTenantOnConnection, match="schema 'public' without its tenant"):
        require_current_tenant()
    connection.set_schema(globex.schema_name)  # as tenant-schemas-celery restores it: no tenant object
    assert current_schema() == globex.schema_name
    assert current_tenant() is None


def test_what_the_connection_was_switched_to_switches_it_back(nexus_world):
    acme = nexus_world["tenants"]["acme"]
    connection.set_schema(acme.schema_name)
    previous = current_owner()
    use_public()
    assert current_schema() == "public"
    use_tenant(previous)
    assert current_schema() == acme.schema_name
    assert current_owner() is previous
