"""The `$filter` subset of PACT v2.3 Action ListFootprints, parsed and evaluated.

The spec allows (and a host may support on a best-effort basis, refusing the rest with
NotImplemented):
- `eq lt le gt ge` on created, updated, productCategoryCpc, pcf/geographyCountry,
  pcf/referencePeriodStart, pcf/referencePeriodEnd;
- `and`, parentheses;
- `any` on productIds and companyIds, with only `eq` inside:
  `productIds/any(p:(p eq 'urn:gtin:4712345060507'))`.
String literals are in single quotes ('' is a quote). Date-time literals may be quoted or bare.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, cast

from collector.footprints.model import ProductFootprint
from metertrace.timeutil import parse_utc

Op = Literal["eq", "lt", "le", "gt", "ge"]
OPS: frozenset[str] = frozenset({"eq", "lt", "le", "gt", "ge"})

_DATETIME: dict[str, Callable[[ProductFootprint], datetime | None]] = {
    "created": lambda pf: pf.created,
    "updated": lambda pf: pf.updated,
    "pcf/referencePeriodStart": lambda pf: pf.pcf.reference_period_start,
    "pcf/referencePeriodEnd": lambda pf: pf.pcf.reference_period_end,
}
_STRING: dict[str, Callable[[ProductFootprint], str | None]] = {
    "productCategoryCpc": lambda pf: pf.product_category_cpc,
    "pcf/geographyCountry": lambda pf: pf.pcf.geography_country,
}
_COLLECTION: dict[str, Callable[[ProductFootprint], list[str]]] = {
    "productIds": lambda pf: pf.product_ids,
    "companyIds": lambda pf: pf.company_ids,
}
SUPPORTED = sorted([*_DATETIME, *_STRING, *_COLLECTION])


class FilterError(ValueError):
    """A filter this host cannot run. `code` is the PACT error code to answer with."""

    def __init__(self, code: Literal["BadRequest", "NotImplemented"], message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Compare:
    path: str
    op: Op
    value: datetime | str


@dataclass(frozen=True)
class AnyEq:
    collection: str
    value: str


@dataclass(frozen=True)
class And:
    parts: tuple[Filter, ...]


Filter = Compare | AnyEq | And

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>'(?:[^']|'')*')
      | (?P<datetime>\d{4}-\d{2}-\d{2}T[0-9:.]+(?:Z|[+-]\d{2}:\d{2}))
      | (?P<name>[A-Za-z_][A-Za-z0-9_]*(?:/[A-Za-z_][A-Za-z0-9_]*)*)
      | (?P<punct>[():])
    )""",
    re.VERBOSE,
)


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise FilterError(
                "BadRequest", f"$filter: cannot read {text[pos:].strip()[:30]!r} at {pos}"
            )
        kind = m.lastgroup or ""
        tokens.append((kind, m.group(kind)))
        pos = m.end()
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokenize(text)
        self.i = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self, expected: str | None = None) -> tuple[str, str]:
        tok = self.peek()
        if tok is None:
            raise FilterError("BadRequest", "$filter ends early; an expression is incomplete")
        if expected is not None and tok[1] != expected:
            raise FilterError("BadRequest", f"$filter: expected {expected!r}, found {tok[1]!r}")
        self.i += 1
        return tok

    def parse(self) -> Filter:
        expr = self.conjunction()
        if self.peek() is not None:
            word = self.take()[1]
            if word in ("or", "not"):
                raise FilterError(
                    "NotImplemented", f"$filter: {word!r} is not supported; only 'and' is"
                )
            raise FilterError("BadRequest", f"$filter: unexpected {word!r}")
        return expr

    def conjunction(self) -> Filter:
        parts = [self.term()]
        while self.peek() == ("name", "and"):
            self.take()
            parts.append(self.term())
        return parts[0] if len(parts) == 1 else And(tuple(parts))

    def term(self) -> Filter:
        kind, word = self.take()
        if word == "(" and kind == "punct":
            inner = self.conjunction()
            self.take(")")
            return inner
        if kind != "name":
            raise FilterError("BadRequest", f"$filter: expected a property, found {word!r}")
        if word.endswith("/any"):
            return self.any_eq(word.removesuffix("/any"))
        if word in ("or", "not"):
            raise FilterError(
                "NotImplemented", f"$filter: {word!r} is not supported; only 'and' is"
            )
        if word not in _DATETIME and word not in _STRING:
            raise FilterError(
                "NotImplemented",
                f"$filter: property {word!r} cannot be filtered on; "
                f"supported: {', '.join(SUPPORTED)}",
            )
        op = self.operator()
        return Compare(word, op, self.literal(word))

    def operator(self) -> Op:
        _, word = self.take()
        if word not in OPS:
            raise FilterError(
                "NotImplemented", f"$filter: operator {word!r} is not supported; use eq lt le gt ge"
            )
        return cast(Op, word)

    def literal(self, path: str) -> datetime | str:
        kind, word = self.take()
        if kind == "string":
            text = word[1:-1].replace("''", "'")
        elif kind == "datetime":
            text = word
        else:
            raise FilterError("BadRequest", f"$filter: {path} needs a quoted value, found {word!r}")
        if path in _DATETIME:
            try:
                return parse_utc(text, field=f"$filter {path}")
            except ValueError as exc:
                raise FilterError("BadRequest", str(exc)) from None
        return text

    def any_eq(self, collection: str) -> AnyEq:
        if collection not in _COLLECTION:
            raise FilterError(
                "NotImplemented",
                f"$filter: 'any' works on productIds and companyIds only, not {collection!r}",
            )
        self.take("(")
        _, var = self.take()
        self.take(":")
        depth = 0
        while self.peek() == ("punct", "("):
            self.take()
            depth += 1
        _, name = self.take()
        if name != var:
            raise FilterError(
                "BadRequest", f"$filter: expected {var!r} inside any(), found {name!r}"
            )
        _, op = self.take()
        if op != "eq":
            raise FilterError(
                "NotImplemented", f"$filter: only 'eq' is supported inside any(), not {op!r}"
            )
        kind, word = self.take()
        if kind != "string":
            raise FilterError("BadRequest", f"$filter: any() needs a quoted value, found {word!r}")
        for _ in range(depth + 1):
            self.take(")")
        return AnyEq(collection, word[1:-1].replace("''", "'"))


def parse_filter(text: str) -> Filter | None:
    """The parsed filter, or None for an empty one. Raises FilterError naming the problem."""
    if not text.strip():
        return None
    return _Parser(text).parse()


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "eq": operator.eq,
    "lt": operator.lt,
    "le": operator.le,
    "gt": operator.gt,
    "ge": operator.ge,
}


def matches(expr: Filter | None, pf: ProductFootprint) -> bool:
    if expr is None:
        return True
    if isinstance(expr, And):
        return all(matches(p, pf) for p in expr.parts)
    if isinstance(expr, AnyEq):
        return expr.value in _COLLECTION[expr.collection](pf)
    getter = _DATETIME.get(expr.path) or _STRING[expr.path]
    value = getter(pf)
    # OData: a comparison with an absent (null) property is false.
    if value is None or type(value) is not type(expr.value):
        return False
    return _COMPARE[expr.op](value, expr.value)
