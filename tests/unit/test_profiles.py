from pathlib import Path

import pytest
import yaml

from device_profiles import ProfileError, load_catalogue, load_profile
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
