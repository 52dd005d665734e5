"""Compiled workflow versions, cached per process: versions are immutable, so a compile is good forever.

A stored definition is the engine's document (`inputs`, `nodes`, `edges`, `outputs`) plus optional
`tests`: test cases that belong to the version but are not part of what the engine runs.
"""

from collections import OrderedDict
from threading import Lock

from django.conf import settings

from apps.core.errors import ValidationFailed
from apps.engine import CompiledWorkflow, DefinitionError, Limits, compile_workflow
from apps.engine.schemas import META_VALIDATOR as SCHEMA_META_VALIDATOR
from apps.engine.schemas import regex_problems

_CACHE_SIZE = 2048
_cache: "OrderedDict[str, CompiledWorkflow]" = OrderedDict()
_lock = Lock()

RUN_STATUSES = ("completed", "completed_with_recovery", "failed", "timed_out", "cancelled")
TEST_CASE_KEYS = frozenset({"name", "inputs", "expect", "expect_schema", "expect_status", "suite"})


def engine_limits() -> Limits:
    return Limits(**settings.NEXUS_ENGINE_LIMITS)


def engine_document(definition: dict) -> dict:
    return {key: value for key, value in definition.items() if key != "tests"}


def definition_tests(definition: dict) -> list[dict]:
    return definition.get("tests") or []


def _validate_tests(tests) -> dict[str, str]:
    fields: dict[str, str] = {}
    if not isinstance(tests, list):
        return {"definition.tests": "must be a list of test cases"}
    names = set()
    for index, case in enumerate(tests):
        where = f"definition.tests[{index}]"
        if not isinstance(case, dict):
            fields[where] = "must be an object"
            continue
        for key in sorted(set(case) - TEST_CASE_KEYS):
            fields[f"{where}.{key}"] = "unknown field"
        name = case.get("name")
        if not isinstance(name, str) or not name:
            fields[f"{where}.name"] = "required: a non-empty string"
        elif name in names:
            fields[f"{where}.name"] = f"duplicate test name '{name}'"
        names.add(name)
        if not isinstance(case.get("inputs", {}), dict):
            fields[f"{where}.inputs"] = "must be an object"
        if "expect" in case and not isinstance(case["expect"], dict):
            fields[f"{where}.expect"] = "must be an object of expected outputs"
        if "expect_schema" in case:
            expect_schema = case["expect_schema"]
            error = next(iter(SCHEMA_META_VALIDATOR.iter_errors(expect_schema)), None)
            if error is not None:
                fields[f"{where}.expect_schema"] = f"not a valid JSON Schema: {error.message}"
            else:
                # Its patterns run on RE2 against the outputs (linear time): refuse what RE2 cannot run.
                for problem in regex_problems(expect_schema, []):
                    fields[f"{where}.expect_schema.{problem['field']}"] = problem["message"]
        if "expect_status" in case and case["expect_status"] not in RUN_STATUSES:
            fields[f"{where}.expect_status"] = f"one of {', '.join(RUN_STATUSES)}"
        if not {"expect", "expect_schema", "expect_status"} & set(case):
            fields[where] = "needs expect, expect_schema or expect_status"
        suite = case.get("suite", "integration")
        if not isinstance(suite, str) or not suite:
            fields[f"{where}.suite"] = "must be a non-empty string"
    return fields


def compile_definition(definition) -> CompiledWorkflow:
    """Compile, turning engine errors into a ValidationFailed naming each bad field (test cases included)."""
    if not isinstance(definition, dict):
        raise ValidationFailed("definition must be a JSON object", fields={"definition": "must be an object"})
    fields = _validate_tests(definition["tests"]) if "tests" in definition else {}
    compiled = None
    try:
        compiled = compile_workflow(engine_document(definition), limits=engine_limits())
    except DefinitionError as error:
        for item in error.errors:
            key = "definition." + item["field"] if item.get("field") else "definition"
            message = item["message"]
            if item.get("node"):
                message = f"node '{item['node']}': {message}"
            fields[key] = message if key not in fields else f"{fields[key]}; {message}"
    if fields or compiled is None:
        raise ValidationFailed("invalid workflow definition", code="invalid_definition", fields=fields)
    return compiled


def compiled_version(version_id: str, definition_loader) -> CompiledWorkflow:
    with _lock:
        hit = _cache.get(version_id)
        if hit is not None:
            _cache.move_to_end(version_id)
            return hit
    compiled = compile_workflow(engine_document(definition_loader()), limits=engine_limits())
    with _lock:
        _cache[version_id] = compiled
        if len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return compiled
