"""A client's own ``response_format`` json_schema: vetted before anything is generated, checked after, never fetched.

A JSON Schema is a small program a client sends us, and jsonschema's defaults trust it: its default registry
*retrieves* remote ``$ref``s with urllib (``http://127.0.0.1:…``, ``file:///…``: SSRF and local file reads, with
no timeout or size cap), deep nesting overflows the stack, a ``$ref`` cycle or an ``allOf`` fan-out runs
unboundedly and a ``pattern`` can backtrack for minutes. So, before the request is queued for generation:

* size (``MAX_SCHEMA_CHARS``), depth (``MAX_DEPTH``) and node count are checked without recursion;
* every ``$ref``/``$dynamicRef``/``$recursiveRef`` must point inside the schema (``#…``) — nothing is ever
  retrieved: validators get an empty ``referencing.Registry``;
* the schema must be valid against its metaschema;

and the check of the report against it is bounded: at most ``MAX_STEPS`` keyword evaluations and
``PATTERN_TIMEOUT_S`` per regular expression (the ``regex`` module, which can time out). Every refusal is a 400 that
names the field, never the client's values.
"""

from __future__ import annotations

import json
from typing import Any

from assistant.serving.errors import ServingError

MAX_SCHEMA_CHARS = 64 * 1024  # the Report schema is ~7.5k characters
MAX_DEPTH = 32  # nesting of objects and arrays; the Report schema is 7 deep
MAX_NODES = 5_000
MAX_STEPS = 100_000  # keyword evaluations for one check; a report against its own schema takes ~240
PATTERN_TIMEOUT_S = 0.05
REF_KEYWORDS = ("$ref", "$dynamicRef", "$recursiveRef")
PARAM = "response_format"
WHERE = "response_format.json_schema.schema"


class SchemaTooCostly(Exception):
    """Raised inside validation when the step budget or a pattern's time budget is spent."""


def vet(schema: Any) -> Any:
    """The jsonschema validator class for a client schema, or a ``ServingError`` saying what is wrong with it."""
    if not isinstance(schema, dict):
        raise ServingError(f"{WHERE} must be a JSON object", param=PARAM)
    _check_shape(schema)
    if len(json.dumps(schema, separators=(",", ":"))) > MAX_SCHEMA_CHARS:
        raise ServingError(f"{WHERE} is larger than {MAX_SCHEMA_CHARS // 1024} KiB", param=PARAM)
    import jsonschema

    try:
        validator_cls = jsonschema.validators.validator_for(schema)
        validator_cls.check_schema(schema)
    except jsonschema.SchemaError:
        raise ServingError(f"{WHERE} is not a valid JSON Schema", param=PARAM) from None
    except Exception:  # e.g. a non-string $schema: whatever the library trips on, it is the schema's fault
        raise ServingError(f"{WHERE} is not a valid JSON Schema", param=PARAM) from None
    return validator_cls


def check(instance: Any, schema: dict, validator_cls: Any, *, what: str) -> None:
    """``instance`` must satisfy the vetted ``schema``; a mismatch is a 400 that says where and which keyword."""
    import jsonschema
    import referencing
    import referencing.exceptions

    bounded = _bounded(validator_cls)
    validator = bounded(schema, registry=referencing.Registry())  # empty: nothing is ever retrieved
    try:
        error = jsonschema.exceptions.best_match(validator.iter_errors(instance))
    except SchemaTooCostly as exc:
        raise ServingError(f"{WHERE} is too costly to check ({exc})", param=PARAM) from None
    except RecursionError:
        raise ServingError(f"{WHERE} refers to itself without end", param=PARAM) from None
    except referencing.exceptions.Unresolvable:
        raise ServingError(f"{WHERE} has a $ref that points to nothing in the schema", param=PARAM) from None
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(root)"
        raise ServingError(f"{what} does not satisfy the requested response_format schema at {where} "
                           f"({error.validator})", param=PARAM)


def _check_shape(schema: dict) -> None:
    """Depth, node count and references, iteratively (a 300-deep schema must not reach Python's recursion limit)."""
    stack: list[tuple[Any, int]] = [(schema, 1)]
    nodes = 0
    while stack:
        node, depth = stack.pop()
        nodes += 1
        if depth > MAX_DEPTH:
            raise ServingError(f"{WHERE} is nested deeper than {MAX_DEPTH} levels", param=PARAM)
        if nodes > MAX_NODES:
            raise ServingError(f"{WHERE} has more than {MAX_NODES} nodes", param=PARAM)
        if isinstance(node, dict):
            for key in REF_KEYWORDS:
                ref = node.get(key)
                if ref is not None and not (isinstance(ref, str) and ref.startswith("#")):
                    raise ServingError(f"{WHERE}: {key} must point inside the schema ('#/$defs/...'); remote and "
                                       "file references are refused", param=PARAM)
            stack.extend((value, depth + 1) for value in node.values() if isinstance(value, (dict, list)))
        elif isinstance(node, list):
            stack.extend((value, depth + 1) for value in node if isinstance(value, (dict, list)))


def _bounded(validator_cls: Any) -> Any:
    """``validator_cls`` whose keywords count against one step budget and whose patterns can time out."""
    import jsonschema

    steps = [0]

    def counted(keyword):
        def run(validator, value, instance, schema):
            steps[0] += 1
            if steps[0] > MAX_STEPS:
                raise SchemaTooCostly(f"more than {MAX_STEPS} evaluation steps")
            yield from keyword(validator, value, instance, schema) or ()
        return run

    keywords = {name: counted(fn) for name, fn in validator_cls.VALIDATORS.items()}
    keywords["pattern"] = counted(_pattern)
    keywords["patternProperties"] = counted(_pattern_properties)
    return jsonschema.validators.extend(validator_cls, keywords)


def _search(pattern: str, text: str) -> bool:
    import regex

    try:
        return regex.search(pattern, text, timeout=PATTERN_TIMEOUT_S) is not None
    except TimeoutError:
        raise SchemaTooCostly("a pattern took too long to match") from None
    except regex.error:
        raise SchemaTooCostly("a pattern is not a valid regular expression") from None


def _pattern(validator, pattern, instance, schema):
    from jsonschema import ValidationError

    if validator.is_type(instance, "string") and not _search(pattern, instance):
        yield ValidationError("does not match the pattern")


def _pattern_properties(validator, properties, instance, schema):
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in properties.items():
        for key, value in instance.items():
            if _search(pattern, key):
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)
