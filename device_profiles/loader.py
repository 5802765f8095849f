"""Finding and loading profiles; every error names the file and the field."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import yaml
from pydantic import ValidationError

from .dlt645 import AnyProfile, Dlt645Profile
from .schema import Profile

PACKAGE_DIR = Path(__file__).parent


class ProfileError(ValueError):
    """A profile that cannot be used, with the file it came from."""

    def __init__(self, path: Path | str, message: str) -> None:
        self.path = Path(path)
        self.message = message
        super().__init__(f"{self.path.name}: {message}")


def _loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def format_validation_error(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key; remove it or check its spelling"
        lines.append(f"{_loc(err['loc'])}: {msg}")
    return "; ".join(lines)


def load_profile(path: Path | str) -> AnyProfile:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ProfileError(path, f"cannot read: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ProfileError(path, f"not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ProfileError(path, "a profile is a YAML mapping with id, registers, ...")
    protocol = data.get("protocol", "modbus")
    if protocol not in ("modbus", "dlt645"):
        raise ProfileError(path, f"protocol: {protocol!r} is unknown; use modbus or dlt645")
    try:
        profile: AnyProfile = (
            Dlt645Profile.model_validate(data)
            if protocol == "dlt645"
            else Profile.model_validate(data)
        )
    except ValidationError as exc:
        raise ProfileError(path, format_validation_error(exc)) from exc
    if profile.id != path.stem:
        raise ProfileError(path, f"id {profile.id!r} must equal the file name {path.stem!r}")
    return profile


def load_catalogue(extra_dirs: Iterable[Path | str] = ()) -> dict[str, AnyProfile]:
    """All profiles shipped with MeterTrace plus those in extra_dirs; duplicate ids are errors."""
    catalogue: dict[str, AnyProfile] = {}
    origin: dict[str, Path] = {}
    for directory in (PACKAGE_DIR, *map(Path, extra_dirs)):
        for path in sorted(directory.glob("*.yaml")):
            profile = load_profile(path)
            if profile.id in catalogue:
                raise ProfileError(
                    path, f"duplicate id {profile.id!r}, also in {origin[profile.id]}"
                )
            catalogue[profile.id] = profile
            origin[profile.id] = path
    return catalogue


def find_profile(name: str, extra_dirs: Iterable[Path | str] = ()) -> AnyProfile:
    """A profile by id, or by path to a YAML file."""
    if name.endswith((".yaml", ".yml")):
        return load_profile(name)
    catalogue = load_catalogue(extra_dirs)
    try:
        return catalogue[name]
    except KeyError:
        raise ProfileError(
            f"{name}.yaml", f"no profile {name!r}; known: {', '.join(sorted(catalogue))}"
        ) from None
