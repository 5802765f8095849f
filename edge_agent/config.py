"""The gateway's configuration file (gateway.yaml)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

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
    alg: Literal["ed25519", "hmac-sha256"] = Field(
        "ed25519", description="ed25519: a key pair only this gateway holds; hmac: a shared key"
    )
    key_file: ConfigPath = Field(
        description="ed25519: private key PEM, created on first start (its public key is "
        "written beside it as .pub.pem for enrolment); hmac-sha256: hex key shared with the "
        "collector (metertrace keygen)"
    )


# --- transports ---------------------------------------------------------------------------
Parity = Literal["N", "E", "O"]
BAUD_RATES = (300, 600, 1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200)


def _standard_baudrate(v: int | None) -> int | None:
    if v is not None and v not in BAUD_RATES:
        raise ValueError(f"baudrate {v} is not a standard rate; use one of {BAUD_RATES}")
    return v


class ModbusTcpTransport(StrictModel):
    type: Literal["modbus-tcp"]
    host: str
    port: int = Field(502, ge=1, le=65535)
    unit_id: int = Field(1, ge=0, le=255)
    timeout_s: float = Field(1.0, gt=0, le=60)


class SerialTransport(StrictModel):
    """Settings every device on one serial line must share (checked when the agent starts)."""

    port: str = Field(
        min_length=1, description="serial device, e.g. /dev/ttyUSB0 or /dev/serial/by-id/..."
    )
    stopbits: Literal[1, 2] = 1
    bytesize: Literal[8] = 8
    timeout_s: float = Field(1.0, gt=0, le=60, description="per request; then the line moves on")


class ModbusRtuTransport(SerialTransport):
    type: Literal["modbus-rtu"]
    baudrate: int = 9600
    parity: Parity = Field("E", description="the Modbus serial line default; many meters use N")
    unit_id: int = Field(1, ge=1, le=247)

    _baud = field_validator("baudrate")(_standard_baudrate)


class Dlt645Transport(SerialTransport):
    type: Literal["dlt645"]
    baudrate: int | None = Field(None, description="default: the profile's (dlt645.baudrate)")
    parity: Parity | None = Field(None, description="default: the profile's (dlt645.parity)")
    address: str = Field(
        pattern=r"^[0-9]{12}$", description="the meter's address, 12 digits, e.g. 000000123456"
    )
    frame_gap_ms: float = Field(20.0, ge=0, le=1000, description="silence between frames")

    _baud = field_validator("baudrate")(_standard_baudrate)


TRANSPORTS: dict[str, type[StrictModel]] = {
    "modbus-tcp": ModbusTcpTransport,
    "modbus-rtu": ModbusRtuTransport,
    "dlt645": Dlt645Transport,
}
AnyTransport = ModbusTcpTransport | ModbusRtuTransport | Dlt645Transport


class DeviceSettings(StrictModel):
    id: str
    profile: str = Field(description="profile id from the catalogue, or a path to a YAML file")
    transport: AnyTransport
    interval_s: float = Field(10.0, ge=0.1, le=86400)
    align: bool = Field(
        False, description="poll at multiples of interval_s since midnight UTC (:00, :15, ...)"
    )
    ct_ratio: float | None = Field(
        None,
        gt=0,
        description="current transformer ratio fitted (e.g. 40 for 200/5 A); "
        "overrides the ratio the meter reports, for profiles with transform: ct",
    )
    vt_ratio: float | None = Field(None, gt=0, description="voltage transformer ratio fitted")

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        return check_id("device", v)

    @field_validator("transport", mode="before")
    @classmethod
    def _transport_by_type(cls, v: Any) -> Any:
        # dispatching here keeps error paths free of the union's tag (transport.port, not
        # transport.modbus-tcp.port)
        if not isinstance(v, dict):
            return v
        model = TRANSPORTS.get(v.get("type", ""))
        if model is None:
            given = f"type {v['type']!r} is unknown" if "type" in v else "type is missing"
            raise ValueError(f"{given}; use one of {', '.join(TRANSPORTS)}")
        return model.model_validate(v)

    @model_validator(mode="after")
    def _alignable(self) -> DeviceSettings:
        per_day = 86400 / self.interval_s
        if self.align and abs(per_day - round(per_day)) > 1e-9:
            raise ValueError(
                f"align: interval_s {self.interval_s:g} does not divide a day (86400 s), so "
                "polls could not stay on the same boundaries; use e.g. 60, 300 or 900"
            )
        return self


class OutboxSettings(StrictModel):
    """Bounds of the on-disk outbox (docs/store-and-forward.md): beyond either, the oldest
    messages are dropped and a data-loss event tells the collector which ones."""

    max_bytes: int = Field(
        200_000_000,
        ge=10_000,
        description="message bytes held while the broker is away; keep twice this free on disk",
    )
    max_age_days: float = Field(
        30.0, gt=0, le=3650, description="messages older than this (poll time) are dropped"
    )


class StatusSettings(StrictModel):
    interval_s: float = Field(
        60.0, ge=1, le=86400, description="retained status republished at least this often"
    )


class CalibrationSettings(StrictModel):
    collector_public_key_file: ConfigPath = Field(
        description="the collector's public key (metertrace collector pubkey); calibration "
        "sets signed by it are applied to the readings"
    )


class AgentConfig(StrictModel):
    gateway: GatewaySettings
    state_dir: ConfigPath = Field(
        Path("state"), validate_default=True, description="sequence numbers and outbox"
    )
    signing: SigningSettings
    mqtt: MqttSettings = MqttSettings()
    profile_dirs: list[ConfigPath] = []
    devices: list[DeviceSettings] = Field(min_length=1)
    outbox: OutboxSettings = OutboxSettings()
    status: StatusSettings = StatusSettings()
    calibration: CalibrationSettings | None = Field(
        None, description="absent: readings travel uncorrected, without a calibration stamp"
    )

    @model_validator(mode="after")
    def _unique_devices(self) -> AgentConfig:
        seen: set[str] = set()
        for i, d in enumerate(self.devices):
            if d.id in seen:
                raise ValueError(f"devices[{i}].id: {d.id!r} is used twice; device ids are unique")
            seen.add(d.id)
        return self
