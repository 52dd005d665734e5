"""The workflow template library: JSON files in apps/workflows/library/, one per template."""

import json
from functools import cache
from pathlib import Path

from apps.core.errors import ValidationFailed

LIBRARY_DIR = Path(__file__).resolve().parent / "library"


@cache
def templates() -> dict[str, dict]:
    return {path.stem: json.loads(path.read_text()) for path in sorted(LIBRARY_DIR.glob("*.json"))}


def template_get(name: str) -> dict:
    try:
        return templates()[name]
    except KeyError:
        raise ValidationFailed(
            f"unknown template '{name}'", code="unknown_template", fields={"template": f"one of {', '.join(templates())}"}
        ) from None
