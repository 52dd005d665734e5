"""Compiled workflow versions, cached per process: versions are immutable, so a compile is good forever."""

from collections import OrderedDict
from threading import Lock

from django.conf import settings

from apps.core.errors import ValidationFailed
from apps.engine import CompiledWorkflow, DefinitionError, Limits, compile_workflow

_CACHE_SIZE = 2048
_cache: "OrderedDict[str, CompiledWorkflow]" = OrderedDict()
_lock = Lock()


def engine_limits() -> Limits:
    return Limits(**settings.NEXUS_ENGINE_LIMITS)


def compile_definition(definition) -> CompiledWorkflow:
    """Compile, turning engine errors into a ValidationFailed naming each bad field."""
    if not isinstance(definition, dict):
        raise ValidationFailed("definition must be a JSON object", fields={"definition": "must be an object"})
    try:
        return compile_workflow(definition, limits=engine_limits())
    except DefinitionError as error:
        fields = {}
        for item in error.errors:
            key = "definition." + item["field"] if item.get("field") else "definition"
            message = item["message"]
            if item.get("node"):
                message = f"node '{item['node']}': {message}"
            fields[key] = message if key not in fields else f"{fields[key]}; {message}"
        raise ValidationFailed("invalid workflow definition", code="invalid_definition", fields=fields) from None


def compiled_version(version_id: str, definition_loader) -> CompiledWorkflow:
    with _lock:
        hit = _cache.get(version_id)
        if hit is not None:
            _cache.move_to_end(version_id)
            return hit
    compiled = compile_workflow(definition_loader(), limits=engine_limits())
    with _lock:
        _cache[version_id] = compiled
        if len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return compiled
