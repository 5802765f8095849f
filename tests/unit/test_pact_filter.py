"""The $filter subset of PACT v2.3 ListFootprints: each case is a filter and what it selects."""

import pytest

from collector.footprints.filter import FilterError, matches, parse_filter
from collector.footprints.sample import sample_footprints

pytestmark = pytest.mark.unit

PFS = {pf.id.hex[:4]: pf for pf in sample_footprints()}  # 9d91 Q3-105, afce Q4-105, 86a7 Q4-280
CELL_105 = "urn:pact:sample.metertrace.example:supplier-id:LFP-PRISM-105AH"


def selected(text: str) -> set[str]:
    expr = parse_filter(text)
    return {k for k, pf in PFS.items() if matches(expr, pf)}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", {"9d91", "afce", "86a7"}),
        ("created ge '2026-01-19T08:00:00Z'", {"afce", "86a7"}),
        ("created gt '2026-01-19T08:00:00Z'", {"86a7"}),
        ("created lt '2026-01-19T08:00:00Z'", {"9d91"}),
        ("created le '2026-01-19T08:00:00.000000Z'", {"9d91", "afce"}),
        ("created eq '2026-01-19T09:00:00+01:00'", {"afce"}),  # same instant, other offset
        ("created ge 2026-01-19T08:00:00Z", {"afce", "86a7"}),  # bare date-time literal
        ("updated ge '2020-01-01T00:00:00Z'", set()),  # absent property: comparison is false
        ("productCategoryCpc eq '46420'", {"9d91", "afce", "86a7"}),
        ("productCategoryCpc eq '3342'", set()),
        ("pcf/geographyCountry eq 'CN'", {"9d91", "afce", "86a7"}),
        ("pcf/geographyCountry eq 'DE'", set()),
        (
            "(pcf/referencePeriodStart ge '2025-10-01T00:00:00.000Z') and "
            "(pcf/referencePeriodEnd lt '2026-01-02T00:00:00.000Z')",
            {"afce", "86a7"},
        ),
        ("pcf/referencePeriodEnd le '2025-10-01T00:00:00Z'", {"9d91"}),
        (f"productIds/any(p:(p eq '{CELL_105}'))", {"9d91", "afce"}),
        (f"productIds/any(p:p eq '{CELL_105}')", {"9d91", "afce"}),
        (
            f"productIds/any(p:(p eq '{CELL_105}')) and created ge '2026-01-01T00:00:00Z'",
            {"afce"},
        ),
        (
            "companyIds/any(c:(c eq 'urn:pact:sample.metertrace.example:company-id:cell-works'))",
            {"9d91", "afce", "86a7"},
        ),
        ("productIds/any(p:(p eq 'urn:gtin:4712345060507'))", set()),
    ],
)
def test_filter_selects(text, expected):
    assert selected(text) == expected


@pytest.mark.parametrize(
    ("text", "code", "names"),
    [
        ("companyName eq 'x'", "NotImplemented", "companyName"),
        ("created ne '2026-01-01T00:00:00Z'", "NotImplemented", "ne"),
        (
            "created ge '2026-01-01T00:00:00Z' or created lt '2025-01-01T00:00:00Z'",
            "NotImplemented",
            "or",
        ),
        ("productIds/any(p:(p ne 'urn:x:1'))", "NotImplemented", "eq"),
        ("comment/any(p:(p eq 'x'))", "NotImplemented", "productIds and companyIds"),
        ("created ge '2026-01-01'", "BadRequest", "timezone"),
        ("created ge 'yesterday'", "BadRequest", "ISO 8601"),
        ("created ge", "BadRequest", "ends early"),
        ("(created ge '2026-01-01T00:00:00Z'", "BadRequest", "ends early"),
        ("created ge '2026-01-01T00:00:00Z' created", "BadRequest", "unexpected"),
        ('created ge "2026-01-01T00:00:00Z"', "BadRequest", "cannot read"),
        ("productCategoryCpc eq 3342", "BadRequest", "cannot read"),
    ],
)
def test_unsupported_or_malformed_filters_are_refused_with_the_reason(text, code, names):
    with pytest.raises(FilterError) as err:
        parse_filter(text)
    assert err.value.code == code
    assert names in str(err.value)


def test_a_quote_inside_a_string_is_doubled():
    expr = parse_filter("productCategoryCpc eq 'O''Brien'")
    assert expr is not None and expr.value == "O'Brien"  # type: ignore[union-attr]
