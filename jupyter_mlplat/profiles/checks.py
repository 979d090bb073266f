"""Validation of profile files: JSON Schema errors as plain sentences, then semantic rules.

Every problem reads ``<file>: profile '<slug>': <field> <what is wrong>; fix the file and
restart.`` where ``<field>`` is a dotted path inside the profile (``gpu.max_count``,
``gpu.types[0].node_selector``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import jsonschema

from .model import SHARED, Profile, ProfileError, display_path, parse_memory

# Set from the chosen GPU count by the spawners; a profile must not set them itself.
RESERVED_ENV = ("CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES")
_TYPE_NAMES = {
    "object": "a mapping",
    "array": "a list",
    "string": "a string",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "null": "empty",
}


def problem(
    path: Path, profile: str | None, field: str, text: str, fix: str = "fix the file"
) -> str:
    where = f"profile '{profile}': " if profile else ""
    subject = f"{field} " if field else ""
    return f"{display_path(path)}: {where}{subject}{text}; {fix} and restart."


def dotted(parts: Iterable[Any]) -> str:
    """``gpu.types[0].node_selector["nvidia.com/gpu.product"]`` from path parts."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not str(part).isidentifier():
            out += f"[{json.dumps(str(part))}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _describe(value: Any) -> str:
    if value is None:
        return "nothing"
    kind = {dict: "a mapping", list: "a list", bool: "a boolean", str: "the string"}.get(
        type(value), f"the {type(value).__name__}"
    )
    return kind if isinstance(value, dict | list) else f"{kind} {value!r}"


def _sentence(error: jsonschema.ValidationError) -> tuple[list[Any], str]:
    """(path of the field, what is wrong) for one schema error."""
    path = list(error.absolute_path)
    kind, expected, got = error.validator, error.validator_value, error.instance
    hint = error.schema.get("x-hint") if isinstance(error.schema, dict) else None
    if "propertyNames" in error.absolute_schema_path:
        if isinstance(got, bool):
            return path, f"has the key {got} (YAML reads yes/no/on/off as booleans: quote the key)"
        return path, f"has an invalid key {got!r} (keys must be {hint or 'valid names'})"
    if kind == "required":
        missing = next(name for name in expected if name not in got)
        return [*path, missing], "is required"
    if kind == "additionalProperties":
        known = sorted(error.schema.get("properties", {}))
        extra = sorted(set(got) - set(known), key=str)[0]
        allowed = f" (known fields: {', '.join(known)})" if known else ""
        return [*path, extra], f"is not a known field{allowed}"
    if kind == "type":
        names = [expected] if isinstance(expected, str) else expected
        wanted = " or ".join(_TYPE_NAMES.get(n, n) for n in names)
        return path, f"must be {wanted} (got {_describe(got)})"
    if kind in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
        op = {"minimum": ">=", "exclusiveMinimum": ">", "maximum": "<=", "exclusiveMaximum": "<"}
        return path, f"must be {op[kind]} {expected} (got {got!r})"
    if kind == "pattern":
        return path, f"must be {hint or 'matching ' + expected} (got {got!r})"
    if kind == "enum":
        return path, f"must be one of {', '.join(map(repr, expected))} (got {got!r})"
    if kind == "minItems":
        return path, f"must list at least {expected} item(s)"
    if kind == "minLength":
        return path, "must not be empty"
    if kind == "minProperties":
        return path, f"must have at least {expected} entry(ies)"
    if kind == "uniqueItems":
        return path, "must not repeat an item"
    return path, error.message


def _validator(schema: dict, definition: str | None = None):
    if definition:
        schema = {"$defs": schema["$defs"], "$ref": f"#/$defs/{definition}"}
    return jsonschema.Draft202012Validator(schema)


def schema_problems(path: Path, data: Any, schema: dict) -> list[str]:
    """One sentence per schema error of a profile file, in document order."""
    errors = sorted(
        _validator(schema).iter_errors(data), key=lambda e: [str(p) for p in e.absolute_path]
    )
    problems = []
    for error in errors:
        parts, text = _sentence(error)
        if not parts:
            text = f"must be a mapping with a 'profiles' list (got {_describe(data)})"
            problems.append(problem(path, None, "the file", text))
            continue
        slug = None
        if len(parts) >= 2 and parts[0] == "profiles" and isinstance(parts[1], int):
            raw = data["profiles"][parts[1]]
            slug = raw.get("slug") if isinstance(raw, dict) else None
            slug = slug if isinstance(slug, str) else f"#{parts[1] + 1}"
            parts = parts[2:]
        problems.append(problem(path, slug, dotted(parts), text))
    return problems


def read_groups(path: Path, data: Any, schema: dict) -> tuple[list[str], list[str]]:
    """``(teams, roles)`` from the parsed ``groups.yaml`` at ``path``."""
    problems = []
    for error in _validator(schema, "groups_file").iter_errors(data):
        parts, text = _sentence(error)
        problems.append(problem(path, None, dotted(parts) or "the file", text))
    if problems:
        raise ProfileError(problems)
    return list(data["teams"]), list(data["roles"])


def semantic_problems(profiles: Sequence[Profile], known: Sequence[str]) -> list[str]:
    """Rules a schema cannot express, for profiles that passed the schema."""
    problems: list[str] = []
    for profile in profiles:
        problems.extend(_profile_problems(profile, known))
    seen: dict[str, Profile] = {}
    for profile in profiles:
        first = seen.setdefault(profile.slug, profile)
        if first is not profile:
            text = f"is already used in {display_path(first.source)}"
            fix = "give each profile a unique slug"
            problems.append(problem(profile.source, profile.slug, "slug", text, fix))
    problems.extend(_default_problems(profiles, known))
    return problems


def _profile_problems(p: Profile, known: Sequence[str]) -> list[str]:
    out = []

    def bad(field: str, text: str, fix: str = "fix the file") -> None:
        out.append(problem(p.source, p.slug, field, text, fix))

    if p.shared and p.groups:
        bad("groups", "must be left out when shared is true (a shared profile is for everyone)")
    if not p.shared and not p.groups:
        bad("groups", "is required unless shared is true")
    for i, group in enumerate(p.groups):
        if group not in known:
            bad(f"groups[{i}]", f"names unknown group {group!r} (known: {', '.join(known)})")
    if p.cpu_guarantee > p.cpu_limit:
        bad("cpu.guarantee", f"must be <= cpu.limit {p.cpu_limit:g} (got {p.cpu_guarantee:g})")
    if parse_memory(p.mem_guarantee) > parse_memory(p.mem_limit):
        bad("memory.guarantee", f"must be <= memory.limit {p.mem_limit} (got {p.mem_guarantee})")
    if p.gpu_max_count > 0 and not p.gpu_types:
        bad("gpu.types", "must list at least one GPU type when gpu.max_count > 0")
    if p.gpu_max_count == 0 and p.gpu_types:
        bad("gpu.types", "must be left out when gpu.max_count is 0")
    if p.gpu_default_count > p.gpu_max_count:
        text = f"must be <= gpu.max_count {p.gpu_max_count} (got {p.gpu_default_count})"
        bad("gpu.default_count", text)
    names = [t.name for t in p.gpu_types]
    for i, name in enumerate(names):
        if name in names[:i]:
            bad(f"gpu.types[{i}].name", f"repeats GPU type {name!r}; give each type once")
    for name in RESERVED_ENV:
        if name in p.environment:
            bad(f"environment.{name}", "is set from the chosen GPU count", "remove it")
    return out


def _default_problems(profiles: Sequence[Profile], known: Sequence[str]) -> list[str]:
    """At most one default per audience: each known group (its profiles + shared ones)."""
    problems = []
    reported = set()
    for audience in (SHARED, *known):
        defaults = [
            p
            for p in profiles
            if p.default and (p.shared or (audience != SHARED and audience in p.groups))
        ]
        for extra in defaults[1:]:
            if extra.slug in reported:
                continue
            reported.add(extra.slug)
            who = "every user" if audience == SHARED else f"members of {audience}"
            text = f"is true but {who} already get default profile '{defaults[0].slug}'"
            fix = "keep one default per group"
            problems.append(problem(extra.source, extra.slug, "default", text, fix))
    return problems
