"""What a real footprint needs beyond the meters: who publishes it, how products are named,
which emission factors apply. The `footprints:` part of collector.yaml's `pact:` block."""

from __future__ import annotations

from pydantic import Field, field_validator

from collector.footprints.settings import PactSettings
from metertrace.config import StrictModel


class ProductEntry(StrictModel):
    """Per-product overrides; a product not listed gets the defaults."""

    product_ids: list[str] | None = Field(None, min_length=1, description="URNs; default: template")
    product_category_cpc: str | None = None
    product_description: str | None = None


class SteamState(StrictModel):
    """Steam is metered as mass; its energy is m·(h(p, T) − h(water at 20 °C)), IAPWS-IF97."""

    pressure_mpa: float = Field(gt=0, description="absolute pressure at the meter")
    temperature_c: float = Field(gt=0)


class FootprintSettings(StrictModel):
    company_name: str = Field(min_length=1)
    company_ids: list[str] = Field(min_length=1, description="URNs of the publishing company")
    product_id_template: str = Field(
        description="URN of a product from its batch product_id, e.g. "
        "urn:pact:cells.example.com:product-id:{product_id}"
    )
    product_category_cpc: str = Field(min_length=1, description="UN CPC code, default for all")
    products: dict[str, ProductEntry] = {}
    geography_country: str | None = Field(None, pattern=r"^[A-Z]{2}$")
    time_zone: str = Field("UTC", description="calendar months (reference periods) in this zone")
    settle_h: float = Field(
        48.0, ge=0, description="a month is published this long after it ends (late readings)"
    )
    refresh_s: float = Field(300.0, ge=0, description="recompute at most this often")
    factors: dict[str, str] = Field(
        default_factory=lambda: {
            "electricity": "cn-grid-average-2023",
            "gas": "cn-natural-gas",
            "steam": "cn-purchased-heat",
        },
        description="emission factor record name per medium (collector/factors/model.py)",
    )
    steam: SteamState | None = Field(None, description="needed when steam is metered")

    @field_validator("product_id_template")
    @classmethod
    def _template(cls, v: str) -> str:
        if "{product_id}" not in v or not v.lower().startswith("urn:"):
            raise ValueError(f"{v!r}: write a URN containing {{product_id}}")
        return v


class CollectorPactSettings(PactSettings):
    """The collector's `pact:` block: the host's settings and what its footprints are made of."""

    footprints: FootprintSettings
