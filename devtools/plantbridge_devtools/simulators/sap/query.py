"""OData v2 system query options: ``$filter``, ``$orderby``, ``$top``, ``$skip``, ``$select``,
``$expand``, ``$inlinecount`` and ``$format``.

``$filter`` supports ``eq ne gt ge lt le``, ``and``, ``or``, ``not``, parentheses and the functions
``substringof``, ``startswith`` and ``endswith``. Literals follow OData v2: ``'text'`` (``''``
escapes a quote), ``guid'...'``, ``datetime'2024-05-01T00:00:00'``, ``datetimeoffset'...'``,
``time'PT08H00M00S'``, numbers (optionally suffixed ``M``, ``L``, ``d``, ``f``), ``true``, ``false``
and ``null``. Literal types are checked against the property as SAP Gateway does: an
``Edm.Guid`` property must be compared with ``guid'...'``.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from plantbridge_devtools.simulators.sap import messages
from plantbridge_devtools.simulators.sap.edm import EntityType, Property
from plantbridge_devtools.simulators.sap.odata import Entity, numeric_key, parse_time

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<typed>(?:guid|datetimeoffset|datetime|time|X|binary)'(?:[^']|'')*')
      | (?P<str>'(?:[^']|'')*')
      | (?P<num>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?[MmLldDfF]?)
      | (?P<punct>[(),/])
      | (?P<word>[A-Za-z_][A-Za-z0-9_.]*)
    )""",
    re.VERBOSE,
)
_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "gt": operator.gt,
    "ge": operator.ge,
    "lt": operator.lt,
    "le": operator.le,
}
_COMPARISONS = set(_OPERATORS)
_FUNCTIONS = {"substringof", "startswith", "endswith"}


@dataclass(frozen=True)
class Literal:
    kind: str  # str, guid, datetime, datetimeoffset, time, num, bool, null
    value: Any


@dataclass(frozen=True)
class PropRef:
    name: str


Node = tuple[Any, ...]


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise messages.invalid_query(f"Invalid $filter expression near '{text[pos : pos + 20]}'")
        kind = m.lastgroup or ""
        tokens.append((kind, m.group(kind)))
        pos = m.end()
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokenize(text)
        self.pos = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        tok = self.peek()
        if tok is None:
            raise messages.invalid_query("Unexpected end of $filter expression")
        self.pos += 1
        return tok

    def expect(self, value: str) -> None:
        _, text = self.take()
        if text != value:
            raise messages.invalid_query(f"Expected '{value}' in $filter, found '{text}'")

    def keyword(self, *words: str) -> str | None:
        tok = self.peek()
        if tok is not None and tok[0] == "word" and tok[1].lower() in words:
            self.pos += 1
            return tok[1].lower()
        return None

    def parse(self) -> Node:
        node = self.or_expr()
        if self.peek() is not None:
            raise messages.invalid_query(f"Unexpected '{self.peek()[1]}' in $filter")  # type: ignore[index]
        return node

    def or_expr(self) -> Node:
        node = self.and_expr()
        while self.keyword("or"):
            node = ("or", node, self.and_expr())
        return node

    def and_expr(self) -> Node:
        node = self.not_expr()
        while self.keyword("and"):
            node = ("and", node, self.not_expr())
        return node

    def not_expr(self) -> Node:
        if self.keyword("not"):
            return ("not", self.not_expr())
        return self.comparison()

    def comparison(self) -> Node:
        left = self.operand()
        op = self.keyword(*_COMPARISONS)
        if op is None:
            if isinstance(left, tuple) and left and left[0] in _FUNCTIONS | {"group"}:
                return left
            raise messages.invalid_query("Expected a comparison operator (eq, ne, gt, ge, lt, le) in $filter")
        return ("cmp", op, left, self.operand())

    def operand(self) -> Any:
        kind, text = self.take()
        if kind == "punct" and text == "(":
            node = self.or_expr()
            self.expect(")")
            return ("group", node)
        if kind == "str":
            return Literal("str", text[1:-1].replace("''", "'"))
        if kind == "typed":
            prefix, _, rest = text.partition("'")
            return Literal(prefix, rest[:-1].replace("''", "'"))
        if kind == "num":
            return Literal("num", text.rstrip("MmLldDfF"))
        if kind == "word":
            lowered = text.lower()
            if lowered in ("true", "false"):
                return Literal("bool", lowered == "true")
            if lowered == "null":
                return Literal("null", None)
            if lowered in _FUNCTIONS and self.peek() == ("punct", "("):
                self.take()
                first = self.operand()
                self.expect(",")
                second = self.operand()
                self.expect(")")
                return (lowered, first, second)
            return PropRef(text)
        raise messages.invalid_query(f"Unexpected '{text}' in $filter")


def _comparable(prop: Property, value: Any) -> Any:
    """A sort/compare key for a canonical value of ``prop``."""
    if value is None:
        return (0, 0, "")
    if prop.type == "Edm.Decimal":
        return (1, Decimal(str(value)), "")
    if prop.type == "Edm.String":
        key = numeric_key(str(value))
        return (1, int(key), "") if key.isdigit() else (2, 0, key)
    if prop.type in ("Edm.Byte", "Edm.Int16", "Edm.Int32", "Edm.Double"):
        return (1, value, "")
    if prop.type == "Edm.Boolean":
        return (1, int(bool(value)), "")
    return (2, 0, str(value))


def _literal_value(prop: Property, lit: Literal) -> Any:
    """Convert a filter literal to the canonical value of ``prop``, checking the literal type."""
    t = prop.type

    def wrong() -> messages.SapError:
        return messages.invalid_query(f"Invalid literal {lit.kind} '{lit.value}' for property {prop.name} of type {t}")

    if lit.kind == "null":
        return None
    if t == "Edm.String":
        if lit.kind != "str":
            raise wrong()
        return lit.value
    if t == "Edm.Guid":
        if lit.kind != "guid":
            raise wrong()
        return str(lit.value).lower()
    if t == "Edm.Decimal" or t in ("Edm.Byte", "Edm.Int16", "Edm.Int32", "Edm.Double"):
        if lit.kind != "num":
            raise wrong()
        try:
            return (
                Decimal(lit.value)
                if t == "Edm.Decimal"
                else (float(lit.value) if t == "Edm.Double" else int(lit.value))
            )
        except (InvalidOperation, ValueError) as exc:
            raise wrong() from exc
    if t == "Edm.Boolean":
        if lit.kind != "bool":
            raise wrong()
        return lit.value
    if t == "Edm.DateTime":
        if lit.kind != "datetime":
            raise wrong()
        return str(lit.value)[:10]
    if t == "Edm.DateTimeOffset":
        if lit.kind != "datetimeoffset":
            raise wrong()
        text = str(lit.value).replace("Z", "")[:19]
        return text + "Z"
    if t == "Edm.Time":
        if lit.kind != "time" or parse_time(str(lit.value)) is None:
            raise wrong()
        return parse_time(str(lit.value))
    raise wrong()


Predicate = Callable[[Entity], bool]


def compile_filter(text: str, etype: EntityType) -> Predicate:
    """Compile ``$filter`` for entities of ``etype`` into a predicate over canonical entities."""
    tree = _Parser(text).parse()

    def prop_of(ref: PropRef) -> Property:
        prop = etype.prop(ref.name)
        if prop is None:
            raise messages.invalid_query(f"Property {ref.name} not found in type {etype.name}")
        return prop

    def build(node: Any) -> Predicate:
        op = node[0]
        if op == "group":
            return build(node[1])
        if op in ("and", "or"):
            left, right = build(node[1]), build(node[2])
            if op == "and":
                return lambda e: left(e) and right(e)
            return lambda e: left(e) or right(e)
        if op == "not":
            inner = build(node[1])
            return lambda e: not inner(e)
        if op == "cmp":
            return build_comparison(node[1], node[2], node[3])
        if op in _FUNCTIONS:
            return build_function(op, node[1], node[2])
        raise messages.invalid_query("Unsupported $filter expression")

    def build_comparison(op: str, left: Any, right: Any) -> Predicate:
        if isinstance(right, PropRef) and isinstance(left, Literal):
            left, right = right, left
            op = {"gt": "lt", "lt": "gt", "ge": "le", "le": "ge"}.get(op, op)
        if not isinstance(left, PropRef) or not isinstance(right, Literal):
            raise messages.invalid_query("A $filter comparison needs a property and a literal")
        prop = prop_of(left)
        wanted = _literal_value(prop, right)
        wanted_key = _comparable(prop, wanted)

        def check(entity: Entity) -> bool:
            value = entity.get(prop.name)
            if prop.type == "Edm.Guid" and value is not None:
                value = str(value).lower()
            have = _comparable(prop, value)
            return bool(_OPERATORS[op](have, wanted_key))

        return check

    def build_function(name: str, first: Any, second: Any) -> Predicate:
        if name == "substringof":
            needle, target = first, second
        else:
            target, needle = first, second
        if not isinstance(target, PropRef) or not isinstance(needle, Literal) or needle.kind != "str":
            raise messages.invalid_query(f"Invalid arguments for {name} in $filter")
        prop = prop_of(target)
        text = str(needle.value)

        def check(entity: Entity) -> bool:
            value = str(entity.get(prop.name) or "")
            if name == "substringof":
                return text in value
            if name == "startswith":
                return value.startswith(text)
            return value.endswith(text)

        return check

    return build(tree)


@dataclass
class QueryOptions:
    filter: str | None = None
    orderby: list[tuple[str, bool]] = field(default_factory=list)
    top: int | None = None
    skip: int = 0
    select: set[str] | None = None
    expand: list[list[str]] = field(default_factory=list)
    inlinecount: bool = False
    format: str | None = None


def parse_options(params: dict[str, str]) -> QueryOptions:
    opts = QueryOptions()
    opts.filter = params.get("$filter") or None
    if "$top" in params:
        opts.top = _non_negative(params["$top"], "$top")
    if "$skip" in params:
        opts.skip = _non_negative(params["$skip"], "$skip")
    if params.get("$select"):
        opts.select = {s.strip().split("/")[0] for s in params["$select"].split(",") if s.strip() and s.strip() != "*"}
        if not opts.select:
            opts.select = None
    if params.get("$expand"):
        opts.expand = [p.strip().split("/") for p in params["$expand"].split(",") if p.strip()]
    if params.get("$orderby"):
        for part in params["$orderby"].split(","):
            words = part.split()
            if not words:
                continue
            if len(words) > 2 or (len(words) == 2 and words[1].lower() not in ("asc", "desc")):
                raise messages.invalid_query(f"Invalid $orderby '{part}'")
            opts.orderby.append((words[0], len(words) == 2 and words[1].lower() == "desc"))
    inline = params.get("$inlinecount")
    if inline not in (None, "allpages", "none"):
        raise messages.invalid_query(f"Invalid $inlinecount '{inline}'")
    opts.inlinecount = inline == "allpages"
    opts.format = params.get("$format")
    return opts


def _non_negative(text: str, name: str) -> int:
    if not text.isdigit():
        raise messages.invalid_query(f"Invalid value '{text}' for {name}")
    return int(text)


def apply(entities: list[Entity], etype: EntityType, opts: QueryOptions) -> tuple[list[Entity], int]:
    """Filter, order and page ``entities``; returns the page and the count before paging."""
    rows = entities
    if opts.filter:
        predicate = compile_filter(opts.filter, etype)
        rows = [e for e in rows if predicate(e)]
    for name, desc in reversed(opts.orderby):
        prop = etype.prop(name)
        if prop is None:
            raise messages.invalid_query(f"Property {name} not found in type {etype.name}")

        def sort_key(entity: Entity, prop: Property = prop) -> Any:
            return _comparable(prop, entity.get(prop.name))

        rows = sorted(rows, key=sort_key, reverse=desc)
    count = len(rows)
    rows = rows[opts.skip :]
    if opts.top is not None:
        rows = rows[: opts.top]
    return rows, count
