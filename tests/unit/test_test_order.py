"""The suite's own order and markers (tests/conftest.py): unit, then integration, then e2e; e2e modules marked."""

from types import ModuleType, SimpleNamespace

import pytest

from tests.conftest import TESTS, pytest_collection_modifyitems


def collected(relative: str, *, marked: bool = True) -> SimpleNamespace:
    name = relative.removesuffix(".py").replace("/", ".")
    module = ModuleType(f"tests.{name}")
    module.pytestmark = [pytest.mark.e2e, pytest.mark.slow] if marked else []
    return SimpleNamespace(path=TESTS / relative, module=module)


def test_unit_then_integration_then_e2e_each_in_its_own_order():
    items = [
        collected("e2e/test_b.py"),
        collected("integration/api/test_a.py"),
        collected("unit/engine/test_z.py"),
        collected("e2e/test_a.py"),
        collected("ldap/test_l.py"),
        collected("unit/core/test_y.py"),
        collected("integration/test_matrix.py"),
    ]

    pytest_collection_modifyitems(None, items)

    assert [str(item.path.relative_to(TESTS)) for item in items] == [
        "unit/engine/test_z.py",
        "unit/core/test_y.py",
        "integration/api/test_a.py",
        "ldap/test_l.py",
        "integration/test_matrix.py",
        "e2e/test_b.py",
        "e2e/test_a.py",
    ]


def test_an_e2e_module_without_the_e2e_marker_fails_collection():
    items = [collected("unit/test_u.py", marked=False), collected("e2e/test_ok.py"), collected("e2e/test_bare.py", marked=False)]

    with pytest.raises(pytest.UsageError, match=r"without pytestmark = pytest.mark.e2e: tests\.e2e\.test_bare$"):
        pytest_collection_modifyitems(None, items)
    assert [item.module.__name__ for item in items] == ["tests.unit.test_u", "tests.e2e.test_ok", "tests.e2e.test_bare"]


def test_every_e2e_module_of_the_suite_is_marked():
    import importlib

    for path in sorted((TESTS / "e2e").glob("test_*.py")):
        module = importlib.import_module(f"tests.e2e.{path.stem}")
        marks = module.pytestmark if isinstance(module.pytestmark, list) else [module.pytestmark]
        assert "e2e" in {mark.name for mark in marks}, path.name
