"""Declarative register maps of real meters (one YAML file per meter model)."""

from .codec import (
    DataType,
    InvalidBcdError,
    Order,
    decode,
    encode,
    hexwords,
    is_bcd,
    is_float,
    register_count,
)
from .loader import ProfileError, find_profile, load_catalogue, load_profile
from .point import NO_RATIOS, Function, Point, Ratio, Ratios, Transform
from .schema import Profile
from .vocabulary import VOCABULARY, Kind, Quantity, quantity

__all__ = [
    "NO_RATIOS",
    "VOCABULARY",
    "DataType",
    "Function",
    "InvalidBcdError",
    "Kind",
    "Order",
    "Point",
    "Profile",
    "ProfileError",
    "Quantity",
    "Ratio",
    "Ratios",
    "Transform",
    "decode",
    "encode",
    "find_profile",
    "hexwords",
    "is_bcd",
    "is_float",
    "load_catalogue",
    "load_profile",
    "quantity",
    "register_count",
]
