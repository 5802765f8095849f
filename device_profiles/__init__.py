"""Declarative register maps of real meters (one YAML file per meter model)."""

from .codec import DataType, Order, decode, encode, hexwords, is_float, register_count
from .loader import ProfileError, find_profile, load_catalogue, load_profile
from .schema import Function, Point, Profile
from .vocabulary import VOCABULARY, Kind, Quantity, quantity

__all__ = [
    "VOCABULARY",
    "DataType",
    "Function",
    "Kind",
    "Order",
    "Point",
    "Profile",
    "ProfileError",
    "Quantity",
    "decode",
    "encode",
    "find_profile",
    "hexwords",
    "is_float",
    "load_catalogue",
    "load_profile",
    "quantity",
    "register_count",
]
