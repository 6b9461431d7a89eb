"""Compatibility rules for a published `.vN` contract: only additive changes are allowed."""

from __future__ import annotations

from typing import Any


def _resolve(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    """Follow a local `$ref` into `$defs`."""
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        return dict(root.get("$defs", {})[ref.removeprefix("#/$defs/")])
    return schema


def _shape(schema: dict[str, Any], root: dict[str, Any]) -> Any:
    """A comparable summary of a property's type (type/format, or the alternatives of anyOf)."""
    schema = _resolve(schema, root)
    if "anyOf" in schema:
        return sorted(str(_shape(s, root)) for s in schema["anyOf"])
    if "enum" in schema:
        return ("enum", schema.get("type"))
    if schema.get("type") == "array":
        return ("array", _shape(schema.get("items", {}), root))
    return (schema.get("type"), schema.get("format"))


def _enums(schema: dict[str, Any], root: dict[str, Any]) -> set[Any]:
    schema = _resolve(schema, root)
    if "anyOf" in schema:
        return set().union(*(_enums(s, root) for s in schema["anyOf"]))
    if schema.get("type") == "array":
        return _enums(schema.get("items", {}), root)
    return set(schema.get("enum", []))


def breaking_changes(old: dict[str, Any], new: dict[str, Any], path: str = "") -> list[str]:
    """What in `new` would break a consumer of `old` (removed/retyped fields, new required, fewer enum values)."""
    problems: list[str] = []
    old_props: dict[str, Any] = old.get("properties", {})
    new_props: dict[str, Any] = new.get("properties", {})
    for name, old_prop in old_props.items():
        where = f"{path}/{name}"
        if name not in new_props:
            problems.append(f"{where}: field removed")
            continue
        new_prop = new_props[name]
        if _shape(old_prop, old) != _shape(new_prop, new):
            problems.append(f"{where}: type changed")
        lost = _enums(old_prop, old) - _enums(new_prop, new)
        if lost:
            problems.append(f"{where}: enum values removed {sorted(map(str, lost))}")
        old_obj, new_obj = _resolve(old_prop, old), _resolve(new_prop, new)
        if old_obj.get("type") == "object" and "properties" in old_obj:
            problems += breaking_changes(
                {**old_obj, "$defs": old.get("$defs", {})}, {**new_obj, "$defs": new.get("$defs", {})}, where
            )
    old_req, new_req = set(old.get("required", [])), set(new.get("required", []))
    for name in sorted(new_req - old_req):
        problems.append(f"{path}/{name}: became required")
    for name in sorted(old_req - new_req):
        if name in new_props:
            problems.append(f"{path}/{name}: no longer required")
    return problems
