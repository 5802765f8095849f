"""The device catalogue as Markdown, generated from the profiles (docs/device-catalogue.md).

`metertrace profiles doc > docs/device-catalogue.md` regenerates it; a unit test fails when the
committed file is stale. `metertrace profiles show NAME` prints one profile's section.
"""

from __future__ import annotations

from collections.abc import Mapping

from .codec import Order, register_count
from .dlt645 import AnyProfile, Dlt645Profile
from .point import Point
from .schema import Profile

HEADER = """\
# Device catalogue

<!-- Generated from device_profiles/*.yaml by `metertrace profiles doc`; do not edit. -->

Every meter MeterTrace can read, one YAML profile each (`device_profiles/<id>.yaml`). Addresses
are wire addresses (0-based). Values are published in the unit shown, after scale and, for
secondary-side meters, the CT/VT ratio. **Unverified** maps rest on facts no source confirmed,
or are synthetic: their notes say which. Adding a meter is adding a YAML file: the generic
profile test reads it back from its simulator with no new code.
"""


def describe_type(p: Point) -> str:
    """'i32, low word first'-style summary of a point's encoding."""
    if register_count(p.type) == 1:
        return p.type.value + ("" if p.byte_order is Order.BIG else ", bytes swapped")
    words = "high word first" if p.word_order is Order.BIG else "low word first"
    return f"{p.type.value}, {words}" + ("" if p.byte_order is Order.BIG else ", bytes swapped")


def _num(v: float) -> str:
    return f"{v:g}"


def _extras(p: Point) -> str:
    out = []
    if p.transform:
        out.append(f"× {p.transform.value.replace('_', '×').upper()} ratio")
    if p.na:
        out.append("N/A " + ", ".join(f"{s:#x}" for s in sorted(p.na)))
    if p.valid_range:
        out.append(f"valid {_num(p.valid_range[0])}..{_num(p.valid_range[1])}")
    if p.wrap is not None:
        out.append(f"wraps at {_num(p.wrap)}")
    if p.max_rate_per_h is not None:
        out.append(f"max {_num(p.max_rate_per_h)}/h")
    if p.offset:
        out.append(f"offset {_num(p.offset)}")
    return "; ".join(out)


def _modbus_section(p: Profile) -> list[str]:
    m = p.modbus
    reads = (
        "one register per request (torn-read guard on multi-register values)"
        if m.single_register_only
        else f"up to {m.max_block} registers per request, gaps up to {m.max_gap} read through"
    )
    lines = [f"- Modbus: {reads}"]
    if p.reference_conditions:
        rc = p.reference_conditions
        lines.append(
            f"- Reference conditions: {_num(rc.temperature_c)} °C, {_num(rc.pressure_kpa)} kPa"
        )
    for rp in p.ratio_points():
        lines.append(
            f"- {rp.ratio_of.value.upper() if rp.ratio_of else ''} ratio read from "
            f"{rp.function.value} {rp.address:#06x} ({describe_type(rp)}, × {_num(rp.scale)})"
        )
    needed = sorted(r.value for r in p.ratios_from_config())
    if needed:
        lines.append("- Device config must set: " + ", ".join(f"`{r}_ratio`" for r in needed))
    lines += [
        "",
        "| quantity | unit | kind | FC | address | type | scale | notes |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for pt in p.points():
        lines.append(
            f"| `{pt.quantity}` | {pt.unit} | {pt.kind.value} | {pt.function.code:02d} | "
            f"{pt.address:#06x} ({pt.address}) | {describe_type(pt)} | {_num(pt.scale)} | "
            f"{_extras(pt)} |"
        )
    return lines


def _dlt645_section(p: Dlt645Profile) -> list[str]:
    lines = [
        f"- DL/T 645-2007 over serial, {p.dlt645.baudrate} baud, parity {p.dlt645.parity}",
        "",
        "| quantity | unit | kind | DI | format | signed | scale |",
        "|---|---|---|---|---|---|---|",
    ]
    for pt in p.points():
        lines.append(
            f"| `{pt.quantity}` | {pt.unit} | {pt.kind.value} | {pt.di} | {pt.format.text} | "
            f"{'yes' if pt.signed else 'no'} | {_num(pt.scale)} |"
        )
    return lines


def render_profile(p: AnyProfile) -> str:
    status = "verified" if p.verified else "**unverified**"
    lines = [
        f"## {p.manufacturer} {p.model} (`{p.id}`)",
        "",
        f"- Medium: {p.medium}; protocol: {p.protocol}; map {status}",
        f"- Source: {p.source}",
    ]
    lines += _modbus_section(p) if isinstance(p, Profile) else _dlt645_section(p)
    if p.notes:
        lines += ["", p.notes.strip()]
    return "\n".join(lines) + "\n"


def render_catalogue(catalogue: Mapping[str, AnyProfile]) -> str:
    profiles = [catalogue[k] for k in sorted(catalogue)]
    lines = [
        HEADER,
        "| id | manufacturer | model | medium | protocol | quantities | map |",
        "|---|---|---|---|---|---|---|",
    ]
    for p in profiles:
        lines.append(
            f"| [`{p.id}`](#{_anchor(p)}) | {p.manufacturer} | {p.model} | {p.medium} | "
            f"{p.protocol} | {len(p.registers)} | {'verified' if p.verified else 'unverified'} |"
        )
    return "\n".join(lines) + "\n\n" + "\n".join(render_profile(p) for p in profiles)


def _anchor(p: AnyProfile) -> str:
    """GitHub's heading anchor: lower case, punctuation dropped, spaces to dashes."""
    title = f"{p.manufacturer} {p.model} ({p.id})".lower()
    kept = "".join(c for c in title if c.isalnum() or c in " -_")
    return kept.replace(" ", "-")
