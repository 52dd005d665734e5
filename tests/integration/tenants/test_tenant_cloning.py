"""Creating tenants by replaying the template's dump: exact, usable, atomic, concurrent, rebuilt when migrations change."""

import threading

import pytest
from django.conf import settings
from django.db import connection

from apps.core.errors import Conflict, NotFound, ValidationFailed
from apps.tenants import cloning
from apps.tenants.models import Domain, SchemaDump, Tenant
from apps.tenants.selectors import tenant_get, tenant_list_all_tenants
from apps.tenants.services import tenant_create_for_bootstrap, tenant_delete
from tests.integration.tenants.conftest import applied_migrations, catalog, in_thread, schema_present

# nexus_world creates the first tenants outside any transaction, which builds the template and its dump.
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("nexus_world")]

TEMPLATE = settings.NEXUS_TENANT_TEMPLATE_SCHEMA


def _create_migrated(slug: str, monkeypatch) -> Tenant:
    monkeypatch.setattr(cloning, "dump_for_creation", lambda: None)
    try:
        return tenant_create_for_bootstrap(slug=slug)
    finally:
        monkeypatch.undo()


def test_a_cloned_tenant_has_the_same_catalog_as_a_migrated_one(monkeypatch):
    # given a tenant created the ordinary way (CREATE SCHEMA + every migration) and one replayed from the dump
    migrated = _create_migrated("by-migrating", monkeypatch)
    assert cloning.dump_for_creation() is not None
    cloned = tenant_create_for_bootstrap(slug="by-cloning")

    # then the two schemas define exactly the same things, under the same names
    migrated_catalog, cloned_catalog = catalog(migrated.schema_name), catalog(cloned.schema_name)
    assert migrated_catalog["tables"] and migrated_catalog["indexes"] and migrated_catalog["constraints"]
    for kind in migrated_catalog:
        assert cloned_catalog[kind] == migrated_catalog[kind], kind
    assert catalog(TEMPLATE) == cloned_catalog
    # and both are marked migrated exactly as far: every migration, up to the latest of every app
    assert applied_migrations(cloned.schema_name) == applied_migrations(migrated.schema_name)
    assert {tuple(leaf.split(".", 1)) for leaf in cloning.migration_leaves()} <= applied_migrations(cloned.schema_name)


def test_a_cloned_tenant_is_usable_through_the_api(client, nexus_world):
    from apps.accounts.services import apikey_create
    from apps.core.principal import Principal
    from tests.integration.conftest import ApiClient

    tenant = tenant_create_for_bootstrap(slug="fresh-clone", name="Fresh")
    system = Principal(kind="system", actor="system:test", tenant_id=tenant.pk, tenant_slug=tenant.slug, role="owner")
    _, raw = apikey_create(principal=system, tenant=tenant, role="owner")
    api = ApiClient(client, raw)

    assert api.post("/api/v1/workflows/", {"slug": "hello-world", "template": "basic"}).status_code == 201
    assert api.post("/api/v1/workflows/hello-world/deploy/", {}).json()["status"] == "deployed"
    response = api.post("/api/v1/workflows/hello-world/execute/", {"inputs": {"name": "Clone"}})
    assert response.status_code == 200 and response.json()["result"] == {"message": "Hello, Clone!"}
    # the run landed in the clone's schema, and nowhere else
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {tenant.schema_name}.runs_execution")
        assert cursor.fetchone() == (1,)
    assert api.get("/api/v1/workflows/").json()["count"] == 1
    connection.set_tenant(nexus_world["tenants"]["globex"])
    from apps.workflows.models import Workflow

    assert not Workflow.objects.filter(slug="hello-world").exists()


def test_the_template_is_migrated_with_every_tenant_and_listed_nowhere(admin):
    # migrate_schemas migrates every Tenant row but the public one: the template is among them
    assert TEMPLATE in Tenant.objects.exclude(schema_name=settings.PUBLIC_SCHEMA_NAME).values_list("schema_name", flat=True)
    assert schema_present(TEMPLATE)
    template = Tenant.objects.get(schema_name=TEMPLATE)
    assert template.is_template and not template.is_active and not Domain.objects.filter(tenant=template).exists()
    # but no listing or lookup shows it
    listed = {t.schema_name for t in tenant_list_all_tenants(principal=admin)}
    assert TEMPLATE not in listed and settings.PUBLIC_SCHEMA_NAME not in listed
    with pytest.raises(NotFound):
        tenant_get(slug=template.slug)


@pytest.mark.parametrize(
    ("slug", "error"),
    [("acme", Conflict), ("Bad Slug", ValidationFailed), ("x", ValidationFailed), ("template", ValidationFailed)],
)
def test_a_refused_creation_leaves_nothing(slug, error):
    tenants, domains = Tenant.objects.count(), Domain.objects.count()
    with pytest.raises(error):
        tenant_create_for_bootstrap(slug=slug)
    assert (Tenant.objects.count(), Domain.objects.count()) == (tenants, domains)
    assert not schema_present("t_bad_slug") and not schema_present("t_x")


def test_a_creation_failing_half_way_leaves_no_schema_and_no_rows(monkeypatch):
    # given a replay that fails after the schema, its tables and the rows were written
    real_clone = cloning.schema_clone

    def clone_then_fail(**kwargs):
        real_clone(**kwargs)
        assert schema_present("t_half_way")
        raise RuntimeError("disk full")

    monkeypatch.setattr(cloning, "schema_clone", clone_then_fail)
    # when it runs as a real, committing transaction (a thread of its own, outside the test's transaction)
    with pytest.raises(RuntimeError, match="disk full"):
        in_thread(tenant_create_for_bootstrap, slug="half-way")
    # then nothing of it is left
    assert not schema_present("t_half_way")
    assert not Tenant.objects.filter(slug="half-way").exists()
    assert not Domain.objects.filter(domain="half-way.localhost").exists()


def test_two_tenants_created_at_the_same_time(admin):
    start = threading.Barrier(2, timeout=30)

    def create(slug):
        start.wait()
        return tenant_create_for_bootstrap(slug=slug)

    results: dict = {}

    def run(slug):
        try:
            results[slug] = in_thread(create, slug)
        except Exception as error:
            results[slug] = error

    threads = [threading.Thread(target=run, args=(slug,)) for slug in ("race-one", "race-two")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=90)
    try:
        assert all(isinstance(result, Tenant) for result in results.values()), results
        for slug in ("race-one", "race-two"):
            schema = f"t_{slug.replace('-', '_')}"
            assert schema_present(schema) and Tenant.objects.filter(slug=slug).exists()
            assert in_thread(catalog, schema) == in_thread(catalog, TEMPLATE)
    finally:
        for slug in ("race-one", "race-two"):
            if Tenant.objects.filter(slug=slug).exists():
                in_thread(tenant_delete, principal=admin, slug=slug, confirm=slug)
    assert not schema_present("t_race_one") and not schema_present("t_race_two")


def test_the_same_slug_created_twice_at_once_gives_one_tenant(admin):
    start = threading.Barrier(2, timeout=30)
    results: list = []

    def create():
        start.wait()
        try:
            return in_thread(tenant_create_for_bootstrap, slug="twice")
        except Exception as error:
            return error

    threads = [threading.Thread(target=lambda: results.append(create())) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=90)
    try:
        assert sorted(type(result).__name__ for result in results) == ["Conflict", "Tenant"]
        assert Tenant.objects.filter(slug="twice").count() == 1 and schema_present("t_twice")
    finally:
        if Tenant.objects.filter(slug="twice").exists():
            in_thread(tenant_delete, principal=admin, slug="twice", confirm="twice")


def test_new_migrations_mean_a_new_dump_built_on_the_next_creation(monkeypatch, admin):
    # given the migrations change (a new key) and no dump exists for them yet
    monkeypatch.setattr(cloning, "FORMAT_VERSION", "test-new-migrations")
    new_key = cloning.dump_key()
    assert not SchemaDump.objects.filter(key=new_key).exists()
    # then inside a transaction (where pg_dump could not see the work) the schema is migrated instead
    assert cloning.dump_for_creation() is None
    migrated = tenant_create_for_bootstrap(slug="while-stale")
    assert applied_migrations(migrated.schema_name) == applied_migrations(TEMPLATE)
    # and the next creation outside a transaction builds and stores the new dump, then clones from it
    try:
        tenant = in_thread(tenant_create_for_bootstrap, slug="after-migrate")
        assert SchemaDump.objects.filter(key=new_key).exists()
        assert in_thread(catalog, tenant.schema_name) == in_thread(catalog, TEMPLATE)
    finally:
        in_thread(tenant_delete, principal=admin, slug="after-migrate", confirm="after-migrate")
        in_thread(lambda: SchemaDump.objects.filter(key=new_key).delete())
        cloning._compiled.pop(new_key, None)


def test_migrating_the_template_refreshes_the_dump(monkeypatch):
    from django.core.management import call_command

    monkeypatch.setattr(cloning, "FORMAT_VERSION", "test-post-migrate")
    new_key = cloning.dump_key()

    def migrate_template():
        call_command("migrate_schemas", tenant=True, schema_name=TEMPLATE, interactive=False, verbosity=0)

    try:
        in_thread(migrate_template)
        assert SchemaDump.objects.filter(key=new_key).exists()
    finally:
        in_thread(lambda: SchemaDump.objects.filter(key=new_key).delete())
        cloning._compiled.pop(new_key, None)


def test_the_schema_name_is_substituted_exactly():
    template = "tenant_template"
    dump = "\n".join(
        [
            "\\restrict abc",
            "SET statement_timeout = 0;",
            "SELECT pg_catalog.set_config('search_path', '', false);",
            "-- Name: tenant_template; Type: SCHEMA",
            "CREATE SCHEMA tenant_template;",
            "SET default_table_access_method = heap;",
            "CREATE TABLE tenant_template.tenant_template_notes (id bigint, \"tenant_template\" text DEFAULT 'x');",
            "SELECT pg_catalog.setval('tenant_template.notes_id_seq', 3, true);",
            "INSERT INTO tenant_template.tenant_template_notes VALUES (1, 'it''s -- not a comment; really');",
            "\\unrestrict abc",
        ]
    )
    sql = cloning.compile_dump(dump, template=template).sql_for("t_new")
    assert sql.split("\n") == [
        "CREATE SCHEMA t_new;",
        "SET LOCAL default_table_access_method = heap;",
        "CREATE TABLE t_new.tenant_template_notes (id bigint, t_new text DEFAULT 'x');",
        "SELECT pg_catalog.setval('t_new.notes_id_seq', 3, true);",
        "INSERT INTO t_new.tenant_template_notes VALUES (1, 'it''s -- not a comment; really');",
        "",
    ]


@pytest.mark.parametrize(
    "statement",
    [
        "INSERT INTO tenant_template.notes VALUES ('see tenant_template.notes');",
        "CREATE FUNCTION tenant_template.f() RETURNS int AS $$ SELECT count(*) FROM tenant_template.notes $$ LANGUAGE sql;",
        "\\connect other",
    ],
)
def test_a_dump_that_cannot_be_substituted_exactly_is_refused(statement):
    with pytest.raises(cloning.DumpNotReplayable):
        cloning.compile_dump(f"CREATE SCHEMA tenant_template;\n{statement}\n", template="tenant_template")


def test_without_pg_dump_tenants_are_still_created_by_migrating(monkeypatch, settings, admin, caplog):
    # given no dump for the current migrations and no pg_dump to make one
    monkeypatch.setattr(cloning, "FORMAT_VERSION", "test-no-pg-dump")
    settings.NEXUS_PG_DUMP = "/nonexistent/pg_dump"
    try:
        # when a tenant is created outside any transaction
        tenant = in_thread(tenant_create_for_bootstrap, slug="no-pg-dump")
        # then it exists, fully migrated, and the reason is logged
        assert in_thread(catalog, tenant.schema_name) == in_thread(catalog, TEMPLATE)
        assert not SchemaDump.objects.filter(key=cloning.dump_key()).exists()
        assert "no template dump" in caplog.text
    finally:
        in_thread(tenant_delete, principal=admin, slug="no-pg-dump", confirm="no-pg-dump")
