from pathlib import Path

import pytest
import yaml

from device_profiles import Profile, ProfileError, load_catalogue, load_profile
from device_profiles.loader import PACKAGE_DIR

pytestmark = pytest.mark.unit

BASE = {
    "id": "acme-m1",
    "manufacturer": "Acme",
    "model": "M1",
    "medium": "electricity",
    "source": "datasheet",
    "verified": True,
    "registers": [{"quantity": "energy.active.import", "address": 0, "unit": "kWh"}],
}


def write(tmp_path: Path, data: dict, name: str = "acme-m1") -> Path:
    p = tmp_path / f"{name}.yaml"
    p.write_text(yaml.safe_dump(data, allow_unicode=True))
    return p


def test_every_shipped_profile_loads():
    catalogue = load_catalogue()
    assert len(catalogue) == len(list(PACKAGE_DIR.glob("*.yaml")))
    for p in catalogue.values():
        assert p.points(), p.id


def test_valid_minimal_profile(tmp_path):
    p = load_profile(write(tmp_path, BASE))
    (pt,) = p.points()
    assert (pt.function.code, pt.type.value, pt.count) == (3, "u16", 1)


def _with(**changes):
    d = {**BASE, **changes}
    return {k: v for k, v in d.items() if v is not None}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (_with(colour="red"), "colour: unknown key"),
        (
            _with(registers=[{"quantity": "energy.active.import", "address": 0, "unit": "Wh"}]),
            "registers[0]: unit 'Wh' is not the unit of energy.active.import ('kWh')",
        ),
        (
            _with(registers=[{"quantity": "energy.active.imprt", "address": 0, "unit": "kWh"}]),
            "did you mean energy.active.import",
        ),
        (
            _with(
                registers=[
                    {"quantity": "energy.active.import", "address": 0, "unit": "kWh", "type": "f33"}
                ]
            ),
            "registers[0].type",
        ),
        (
            _with(
                registers=[
                    {
                        "quantity": "energy.active.import",
                        "address": 0,
                        "unit": "kWh",
                        "type": "u32",
                    },
                    {"quantity": "energy.active.export", "address": 1, "unit": "kWh"},
                ]
            ),
            "overlap energy.active.export at 1",
        ),
        (
            _with(
                registers=[
                    {"quantity": "energy.active.import", "address": 0, "unit": "kWh"},
                    {"quantity": "energy.active.import", "address": 4, "unit": "kWh"},
                ]
            ),
            "already mapped by registers[0]",
        ),
        (
            _with(
                medium="gas",
                registers=[{"quantity": "volume.gas.standard", "address": 0, "unit": "Nm³"}],
            ),
            "must state reference_conditions",
        ),
        (
            _with(
                registers=[
                    {"quantity": "energy.active.import", "address": 0, "unit": "kWh", "scale": 0}
                ]
            ),
            "scale 0",
        ),
        (_with(verified=None), "verified: Field required"),
        (_with(medium="water"), "unknown medium 'water'"),
    ],
)
def test_errors_name_the_file_and_field(tmp_path, data, message):
    with pytest.raises(ProfileError) as err:
        load_profile(write(tmp_path, data))
    assert str(err.value).startswith("acme-m1.yaml: ")
    assert message in str(err.value)


def test_id_must_match_file_name(tmp_path):
    with pytest.raises(ProfileError, match="must equal the file name 'other'"):
        load_profile(write(tmp_path, BASE, name="other"))


def test_duplicate_ids_across_directories_are_refused(tmp_path):
    shipped = next(PACKAGE_DIR.glob("*.yaml"))
    (tmp_path / shipped.name).write_text(shipped.read_text())
    with pytest.raises(ProfileError, match="duplicate id"):
        load_catalogue([tmp_path])


def test_not_yaml(tmp_path):
    p = tmp_path / "acme-m1.yaml"
    p.write_text("id: [unclosed")
    with pytest.raises(ProfileError, match="not valid YAML"):
        load_profile(p)


def _reg(**kw):
    return {"quantity": "energy.active.import", "address": 0, "unit": "kWh", **kw}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (_with(registers=[_reg(na=["nan"])]), "registers[0].na: 'nan' needs a float type"),
        (_with(registers=[_reg(type="f32", na=["max"])]), "has no meaning for f32; use 'nan'"),
        (_with(registers=[_reg(na=["min"])]), "'min' has no meaning for u16; it is unsigned"),
        (_with(registers=[_reg(na=[0x10000])]), "registers[0].na: 0x10000 does not fit u16"),
        (_with(registers=[_reg(na=[-1])]), "write the raw bit pattern"),
        (_with(registers=[_reg(na=[".nan"])]), "registers[0].na"),
        (_with(registers=[_reg(valid_range=[5, 1])]), "valid_range: write [min, max]"),
        (
            _with(registers=[{"quantity": "frequency", "address": 0, "unit": "Hz", "wrap": 10}]),
            "wrap: frequency is a gauge",
        ),
        (_with(registers=[_reg(wrap=70000)]), "registers[0].wrap: u16 × scale 1 never reaches"),
        (_with(registers=[_reg(scale=-0.01)]), "a counter's scale must be positive"),
        (_with(registers=[_reg(transform="ct_pt")]), "registers[0].transform"),
        (
            _with(
                medium="gas",
                registers=[
                    {
                        "quantity": "pressure.gas",
                        "address": 0,
                        "unit": "kPa",
                        "transform": "vt",
                    }
                ],
            ),
            "CT/VT ratios do not apply",
        ),
        (
            _with(modbus={"single_register_only": True, "max_gap": 4}),
            "modbus: max_gap: single_register_only reads one register per request; remove max_gap",
        ),
        (
            _with(modbus={"max_block": 2}, registers=[_reg(type="u64")]),
            "raise max_block or set modbus.single_register_only: true",
        ),
        (
            _with(ratios={"ct": {"address": 0}}, registers=[_reg(type="u32")]),
            "overlap ratio.ct at 0",
        ),
        (_with(ratios={"ct": {"address": 9, "scale": 0}}), "ratios.ct.scale"),
        (_with(ratios={"pt": {"address": 9}}), "ratios.pt: unknown key"),
    ],
)
def test_feature_errors_name_the_field_and_fix(tmp_path, data, message):
    with pytest.raises(ProfileError) as err:
        load_profile(write(tmp_path, data))
    assert str(err.value).startswith("acme-m1.yaml: ")
    assert message in str(err.value)


def test_sentinels_resolve_to_bit_patterns(tmp_path):
    p = load_profile(
        write(tmp_path, _with(registers=[_reg(type="i64", na=["min", "max", 0xFFFFFFFFFFFFFFFF])]))
    )
    (pt,) = p.points()
    assert pt.na == {2**63, 2**63 - 1, 2**64 - 1}


@pytest.mark.parametrize(
    ("reg", "wrap"),
    [
        (_reg(type="u32", scale=0.01), 2**32 * 0.01),  # default: (type max + 1) × scale
        (_reg(type="i32", scale=0.1), 2**31 * 0.1),  # a signed total turns negative at 2^31
        (_reg(type="bcd48", scale=0.0001), 1e8),  # 12 decimal digits
        (_reg(type="u32", scale=0.01, wrap=1_000_000), 1_000_000),  # display maximum 999999.99
        (_reg(type="f32"), None),  # a float total does not roll over by itself
    ],
)
def test_counter_wrap(tmp_path, reg, wrap):
    (pt,) = load_profile(write(tmp_path, _with(registers=[reg]))).points()
    assert pt.wrap == (pytest.approx(wrap) if wrap else None)


def test_ratio_sources():
    cat = load_catalogue()
    dtsu, acrel = cat["chint-dtsu666"], cat["acrel-dtsd1352"]
    assert dtsu.ratios_from_config() == set()  # IrAt and UrAt are read from the meter
    assert [(p.ratio_of, p.address, p.scale) for p in dtsu.ratio_points()] == [
        ("ct", 0x0006, 1.0),
        ("vt", 0x0007, 0.1),
    ]
    assert {r.value for r in acrel.ratios_from_config()} == {"ct", "vt"}


def test_catalogue_has_the_issue_meters():
    assert {
        "eastron-sdm630",
        "chint-dtsu666",
        "acrel-dtsd1352",
        "acrel-adw300",
        "schneider-pm5xxx",
        "carlogavazzi-em24",
        "janitza-umg96rm-e",
        "fuxin-gas-flow-computer",
        "synthetic-gas-converter",
        "synthetic-steam-vortex",
        "synthetic-single-register-meter",
    } <= set(load_catalogue())


MODBUS_PROFILES = [p for p in load_catalogue().values() if isinstance(p, Profile)]


@pytest.mark.parametrize("profile", MODBUS_PROFILES, ids=lambda p: p.id)
def test_unverified_or_synthetic_maps_say_so(profile):
    text = f"{profile.source} {profile.notes}".lower()
    if "[unverified]" in text or "synthetic" in text:
        assert profile.verified is False, "a map built on unverified or synthetic facts"
    assert profile.source and profile.manufacturer.lower() not in ("", "todo")


def test_pm5xxx_uses_wire_addresses():
    pm = load_catalogue()["schneider-pm5xxx"]
    points = {p.quantity: p for p in pm.points()}
    assert points["energy.active.import"].address == 3204 - 1  # documented register 3204
    assert "number − 1" in pm.notes


def test_published_device_catalogue_is_current():
    from device_profiles.catalogue_doc import render_catalogue

    path = Path(__file__).resolve().parents[2] / "docs" / "device-catalogue.md"
    assert path.read_text(encoding="utf-8") == render_catalogue(load_catalogue()), (
        "docs/device-catalogue.md is stale: metertrace profiles doc > docs/device-catalogue.md"
    )


def test_cli_validate_reports_every_bad_file_and_fails(tmp_path, capsys):
    from metertrace.cli import main

    good = write(tmp_path, BASE)
    bad = write(tmp_path, _with(id="acme-m2", registers=[_reg(valid_range=[2, 1])]), "acme-m2")
    with pytest.raises(SystemExit) as exit_:
        main(["profiles", "validate", str(good), str(bad)])
    out, err = capsys.readouterr()
    assert "acme-m1.yaml: ok (acme-m1, 1 registers)" in out
    assert "acme-m2.yaml: error: registers[0]: valid_range: write [min, max]" in err
    assert "1 of 2 profiles are invalid" in str(exit_.value.code)


def test_cli_show_and_doc(capsys):
    from metertrace.cli import main

    main(["profiles", "show", "schneider-pm5xxx"])
    out = capsys.readouterr().out
    assert "| `energy.active.import` | kWh | counter | 03 | 0x0c83 (3203) | i64" in out
    assert "N/A 0x8000000000000000, 0xffffffffffffffff" in out
    main(["profiles", "doc"])
    assert capsys.readouterr().out.startswith("# Device catalogue")
