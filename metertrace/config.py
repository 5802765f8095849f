"""Loading YAML configuration into pydantic models, with errors that name the path and fix."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal, TypeVar

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, ValidationInfo

from device_profiles.loader import format_validation_error

if TYPE_CHECKING:  # paho is the agent's and collector's dependency, not the core's
    from paho.mqtt.enums import MQTTProtocolVersion

M = TypeVar("M", bound=BaseModel)


class ConfigError(ValueError):
    """A configuration file that cannot be used; the message names file, field and fix."""


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


def load_config(path: Path | str, model: type[M]) -> M:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a YAML mapping at the top level")
    try:
        return model.model_validate(data, context={"base_dir": path.parent.resolve()})
    except ValidationError as exc:
        raise ConfigError(f"{path}: {format_validation_error(exc)}") from exc


def resolve(base_dir: Path | None, value: Path) -> Path:
    """Relative paths in a config file are relative to that file, not to the working dir."""
    if value.is_absolute() or base_dir is None:
        return value
    return base_dir / value


def _resolve_path(value: Path, info: ValidationInfo) -> Path:
    base = (info.context or {}).get("base_dir")
    return resolve(base, value)


# A path field in a config file: relative to the file it is written in.
ConfigPath = Annotated[Path, AfterValidator(_resolve_path)]


class MqttSettings(StrictModel):
    host: str = "127.0.0.1"
    protocol: Literal["5", "3.1.1"] = Field(
        "5", description="MQTT version; 3.1.1 only for brokers without MQTT 5 (e.g. amqtt)"
    )
    port: int = Field(1883, ge=1, le=65535)
    client_id: str | None = Field(None, description="default: derived from the role and id")
    keepalive_s: int = Field(30, ge=5, le=3600)
    username: str | None = None
    password: str | None = None


def mqtt_protocol(settings: MqttSettings) -> MQTTProtocolVersion:
    """paho's constant for the configured protocol version."""
    from paho.mqtt.enums import MQTTProtocolVersion

    v5 = settings.protocol == "5"
    return MQTTProtocolVersion.MQTTv5 if v5 else MQTTProtocolVersion.MQTTv311
