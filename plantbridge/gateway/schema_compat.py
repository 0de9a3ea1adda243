"""Is a new JSON Schema of a contract version compatible with the one already published?

Inbound contracts (the gateway reads them: plant events, ERP intake bodies, telemetry): the new schema
must accept every document the published one accepted, so no sender that followed it is refused. It
may widen (a new optional field, a new enum value, a looser bound); it may not remove a field, make a
field required, narrow a type or an enum, tighten a bound, change a pattern or forbid extra fields.

Outbound contracts (the gateway writes them: the acknowledgement): readers must still understand every
document, so the new schema may not remove a field, make an always-present field optional, widen a
type or an enum, or loosen a bound. A new optional field is allowed (readers ignore what they do not know).

`incompatibilities(old, new, inbound=...)` lists what breaks, one line each with the JSON pointer;
empty means compatible. It reads the subset of JSON Schema that pydantic writes: `type`, `enum`,
`const`, `anyOf`/`oneOf`, `$ref` to `$defs` (a `$ref` to another contract must keep its URI),
`properties`/`required`/`additionalProperties`, `items`, and the length, range, pattern and format keywords.
"""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]

# Keywords whose larger value admits more (a widening raises them), and those whose smaller value does.
_UPPER = ("maxLength", "maximum", "exclusiveMaximum", "maxItems", "maxProperties")
_LOWER = ("minLength", "minimum", "exclusiveMinimum", "minItems", "minProperties")
_EXACT = ("pattern", "format", "multipleOf", "$ref")


def incompatibilities(old: Schema, new: Schema, *, inbound: bool = True) -> list[str]:
    """What in `new` breaks a party that relied on `old` (empty: compatible)."""
    return _Compare(old, new, inbound).node(old, new, "")


class _Compare:
    def __init__(self, old_root: Schema, new_root: Schema, inbound: bool) -> None:
        self.roots = (old_root, new_root)
        self.inbound = inbound
        self.seen: set[tuple[str, str]] = set()

    def node(self, old: Schema, new: Schema, at: str) -> list[str]:
        old, old_ref = _resolve(self.roots[0], old)
        new, new_ref = _resolve(self.roots[1], new)
        if old_ref and new_ref:  # a recursive model: each pair of definitions once
            if (old_ref, new_ref) in self.seen:
                return []
            self.seen.add((old_ref, new_ref))
        olds = [_resolve(self.roots[0], b)[0] for b in _branches(old)]
        news = [_resolve(self.roots[1], b)[0] for b in _branches(new)]
        problems: list[str] = []
        # Inbound: every published branch must still be admitted; outbound: every new branch must have been.
        must, may = (olds, news) if self.inbound else (news, olds)
        for branch in must:
            match = next((m for m in may if _kind(m) == _kind(branch)), None)
            if match is None:
                match = next((m for m in may if _covers(_kind(m), _kind(branch))), None)
            if match is None:
                problems.append(f"{at or '/'}: type {_kind(branch)} no longer "
                                f"{'accepted' if self.inbound else 'part of the published schema'}")
                continue
            pair = (branch, match) if self.inbound else (match, branch)
            problems += self.single(pair[0], pair[1], at)
        return problems

    def single(self, old: Schema, new: Schema, at: str) -> list[str]:
        where = at or "/"
        problems = self.values(old, new, where) + self.bounds(old, new, where)
        old_props: Schema = old.get("properties", {})
        new_props: Schema = new.get("properties", {})
        for name in old_props:
            if name not in new_props:
                problems.append(f"{at}/properties/{name}: field removed")
        old_req, new_req = set(old.get("required", ())), set(new.get("required", ()))
        if self.inbound:
            problems += [f"{at}/properties/{n}: field became required" for n in sorted(new_req - old_req)]
            if old.get("additionalProperties", True) is not False and new.get("additionalProperties") is False:
                problems.append(f"{where}: extra fields no longer accepted (additionalProperties false)")
        else:
            problems += [f"{at}/properties/{n}: field no longer always present"
                         for n in sorted(old_req - new_req) if n in new_props]
        for name in old_props.keys() & new_props.keys():
            problems += self.node(old_props[name], new_props[name], f"{at}/properties/{name}")
        for key in ("items", "additionalProperties"):
            if isinstance(old.get(key), dict) and isinstance(new.get(key), dict):
                problems += self.node(old[key], new[key], f"{at}/{key}")
        return problems

    def values(self, old: Schema, new: Schema, where: str) -> list[str]:
        """Enumerations and constants: the set of admitted values may only grow (inbound) or shrink (outbound)."""
        old_values, new_values = _values(old), _values(new)
        if self.inbound:
            if new_values is None:
                return []
            if old_values is None:
                return [f"{where}: values restricted to {sorted(map(str, new_values))}"]
            lost = old_values - new_values
            return [f"{where}: value(s) {sorted(map(str, lost))} no longer accepted"] if lost else []
        if old_values is None:
            return []
        if new_values is None:
            return [f"{where}: any value may now appear (was one of {sorted(map(str, old_values))})"]
        added = new_values - old_values
        return [f"{where}: new value(s) {sorted(map(str, added))} readers do not know"] if added else []

    def bounds(self, old: Schema, new: Schema, where: str) -> list[str]:
        problems = []
        # Inbound: a bound may only loosen; outbound: only tighten. (`tighter` = admits fewer documents.)
        for key in (*_UPPER, *_LOWER):
            o, n = old.get(key), new.get(key)
            if o == n or not _number(o, n):
                continue
            tighter = (n is not None and (o is None or (n < o if key in _UPPER else n > o)))
            if tighter == self.inbound:
                problems.append(f"{where}: {key} {o} -> {n} ({'narrowed' if self.inbound else 'widened'})")
        for key in _EXACT:
            o, n = old.get(key), new.get(key)
            if o != n and (n is not None if self.inbound else o is not None):
                problems.append(f"{where}: {key} changed ({o!r} -> {n!r})")
        return problems


def _number(*values: Any) -> bool:
    return all(v is None or (isinstance(v, int | float) and not isinstance(v, bool)) for v in values)


def _resolve(root: Schema, schema: Schema) -> tuple[Schema, str | None]:
    """The schema behind a local `$ref` (and a lone `allOf: [{$ref}]`), and the name it was found under."""
    name = None
    for _ in range(32):
        if "$ref" in schema:
            ref: str = schema["$ref"]
            if not ref.startswith("#/$defs/"):  # another contract's schema: compared as its URI (`_EXACT`)
                return schema, None
            name = ref.removeprefix("#/$defs/")
            schema = {**root["$defs"][name], **{k: v for k, v in schema.items() if k != "$ref"}}
        elif isinstance(schema.get("allOf"), list) and len(schema["allOf"]) == 1:
            schema = {**schema["allOf"][0], **{k: v for k, v in schema.items() if k != "allOf"}}
        else:
            return schema, name
    raise ValueError("$ref chain too long")


def _branches(schema: Schema) -> list[Schema]:
    for key in ("anyOf", "oneOf"):
        if isinstance(schema.get(key), list):
            rest = {k: v for k, v in schema.items() if k != key}
            return [{**rest, **b} for b in schema[key]]
    if isinstance(schema.get("type"), list):
        return [{**schema, "type": t} for t in schema["type"]]
    return [schema]


def _covers(wide: str, narrow: str) -> bool:
    """Whether a branch of kind `wide` admits every value of kind `narrow` (an integer is a number)."""
    return wide in ("any", narrow) or (wide, narrow) == ("number", "integer")


def _kind(schema: Schema) -> str:
    """What a branch is, for pairing branches of old and new: its JSON type (or `any`)."""
    kind = schema.get("type")
    if kind:
        return str(kind)
    values = _values(schema)
    if values:
        names = {type(v).__name__ for v in values}
        return {"str": "string", "int": "integer", "float": "number", "bool": "boolean",
                "NoneType": "null"}.get(names.pop(), "any") if len(names) == 1 else "any"
    if "properties" in schema:
        return "object"
    return "any"


def _values(schema: Schema) -> set[Any] | None:
    if "const" in schema:
        return {_hashable(schema["const"])}
    if isinstance(schema.get("enum"), list):
        return {_hashable(v) for v in schema["enum"]}
    return None


def _hashable(value: Any) -> Any:
    return repr(value) if isinstance(value, dict | list) else value
