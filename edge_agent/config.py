"""The gateway's configuration file (gateway.yaml)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from metertrace.config import ConfigPath, MqttSettings, StrictModel
from metertrace.wire import check_id


class GatewaySettings(StrictModel):
    id: str
    site: str = ""

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        return check_id("gateway", v)


class SigningSettings(StrictModel):
    key_file: ConfigPath = Field(description="hex HMAC key shared with the collector")


class ModbusTcpTransport(StrictModel):
    type: Literal["modbus-tcp"]
    host: str
    port: int = Field(502, ge=1, le=65535)
    unit_id: int = Field(1, ge=0, le=255)
    timeout_s: float = Field(1.0, gt=0, le=60)


class DeviceSettings(StrictModel):
    id: str
    profile: str = Field(description="profile id from the catalogue, or a path to a YAML file")
    transport: ModbusTcpTransport
    interval_s: float = Field(10.0, ge=0.1, le=86400)

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        return check_id("device", v)


class AgentConfig(StrictModel):
    gateway: GatewaySettings
    state_dir: ConfigPath = Field(
        Path("state"), validate_default=True, description="sequence numbers and outbox"
    )
    signing: SigningSettings
    mqtt: MqttSettings = MqttSettings()
    profile_dirs: list[ConfigPath] = []
    devices: list[DeviceSettings] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_devices(self) -> AgentConfig:
        seen: set[str] = set()
        for i, d in enumerate(self.devices):
            if d.id in seen:
                raise ValueError(f"devices[{i}].id: {d.id!r} is used twice; device ids are unique")
            seen.add(d.id)
        return self
