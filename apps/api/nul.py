"""NUL characters: PostgreSQL stores none in text or JSONB, so one in a request would end as a 500 at the first
query. They are refused up front, naming where they are: in the path or query string (400 before any view)
and in JSON bodies (the DRF parser and the execute view)."""

from io import BytesIO
from typing import Any

from rest_framework.parsers import JSONParser

from apps.core.errors import ValidationFailed

NUL_ESCAPE = b"\\u0000"


def nul_path(value: Any, path: str = "body") -> str | None:
    """Where in parsed JSON the first NUL character is (`inputs.name`, `tags[2]`), or None."""
    if isinstance(value, str):
        return path if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            if "\x00" in key:
                return path
            found = nul_path(item, key if path == "body" else f"{path}.{key}")
            if found is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = nul_path(item, f"{path}[{index}]")
            if found is not None:
                return found
    return None


def refuse_nul(raw: bytes, data: Any) -> None:
    """Raise if the JSON document `raw` (parsed: `data`) carries a NUL character. The byte search keeps the cost
    off requests without the escape; the walk then names the field (or finds none: a literal `\\\\u0000`)."""
    if NUL_ESCAPE not in raw and NUL_ESCAPE.upper() not in raw:
        return
    where = nul_path(data)
    if where is not None:
        raise ValidationFailed(
            "text may not contain NUL (\\u0000) characters", code="invalid_characters", fields={where: "contains a NUL character"}
        )


class NulSafeJSONParser(JSONParser):
    """DRF's JSON parser, refusing NUL characters anywhere in the document."""

    def parse(self, stream, media_type=None, parser_context=None):
        raw = stream.read() if stream is not None else b""
        data = super().parse(BytesIO(raw), media_type, parser_context)
        refuse_nul(raw, data)
        return data
