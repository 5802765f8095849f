"""Who may do what. Metrology staff own calibration data; plant engineers own devices and
gateways; footprint engines read. Authentication (API keys now, OIDC later) maps a caller to
one of these roles; the routes only ask for a role."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    METROLOGY = "metrology"
    PLANT_ENGINEER = "plant_engineer"
    FOOTPRINT_ENGINE = "footprint_engine"
    ADMIN = "admin"


class Action(StrEnum):
    READ = "read"
    MANAGE_DEVICES = "manage_devices"  # devices, replacements, gateways and their keys
    MANAGE_CALIBRATION = "manage_calibration"  # certificates


PERMISSIONS: dict[Role, frozenset[Action]] = {
    Role.METROLOGY: frozenset({Action.READ, Action.MANAGE_CALIBRATION}),
    Role.PLANT_ENGINEER: frozenset({Action.READ, Action.MANAGE_DEVICES}),
    Role.FOOTPRINT_ENGINE: frozenset({Action.READ}),
    # Admin runs the system but does not certify: calibration stays with metrology.
    Role.ADMIN: frozenset({Action.READ, Action.MANAGE_DEVICES}),
}


def allowed(role: Role, action: Action) -> bool:
    return action in PERMISSIONS[role]
