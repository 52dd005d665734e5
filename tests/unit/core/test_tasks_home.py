"""Services and selectors reach Celery only through apps/core/tasks.py: none imports Celery or the Celery app."""

import ast
from pathlib import Path

APPS = Path(__file__).resolve().parents[3] / "apps"


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_no_service_or_selector_imports_celery():
    offenders = sorted(
        f"{path.relative_to(APPS.parent)}: {name}"
        for pattern in ("*/services.py", "*/selectors.py")
        for path in APPS.glob(pattern)
        for name in _imports(path)
        if name.split(".")[0] == "celery" or name == "nexus_site.celery"
    )
    assert offenders == []
