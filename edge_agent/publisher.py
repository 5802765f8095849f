"""MQTT publishing from the outbox (paho-mqtt, QoS 1, at least once).

Rows are handed to paho in outbox order while connected, at most `window` unacknowledged at a
time, so memory stays bounded however long the broker is away. A row leaves the outbox only on
its PUBACK.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from metertrace.config import MqttSettings
from metertrace.wire import status_topic

from .outbox import Outbox

log = logging.getLogger(__name__)


class Publisher:
    def __init__(
        self, settings: MqttSettings, gateway: str, outbox: Outbox, *, window: int = 50
    ) -> None:
        self.outbox, self.gateway, self.window = outbox, gateway, window
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=settings.client_id or f"metertrace-agent-{gateway}",
            protocol=mqtt.MQTTv5,
        )
        if settings.username:
            self._client.username_pw_set(settings.username, settings.password)
        self._client.will_set(
            status_topic(gateway), json.dumps({"state": "offline"}), qos=1, retain=True
        )
        self._client.reconnect_delay_set(min_delay=1, max_delay=30)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_publish = self._on_publish
        self._settings = settings
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._inflight: dict[int, int] = {}  # paho mid -> outbox row id
        self._handed_up_to = 0  # outbox id of the last row given to paho in this session
        self._connected = False
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="publisher", daemon=True)
        self.published = 0

    def start(self) -> None:
        self._client.connect_async(
            self._settings.host, self._settings.port, keepalive=self._settings.keepalive_s
        )
        self._client.loop_start()
        self._thread.start()

    def notify(self) -> None:
        with self._wake:
            self._wake.notify()

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, rc: Any, _p: Any = None) -> None:
        if rc.is_failure:
            log.error("MQTT broker %s:%s refused the connection: %s",
                      self._settings.host, self._settings.port, rc)
            return
        log.info("connected to MQTT broker %s:%s", self._settings.host, self._settings.port)
        client.publish(
            status_topic(self.gateway), json.dumps({"state": "online"}), qos=1, retain=True
        )
        with self._wake:
            self._connected = True
            # paho re-sends what it had in flight; rows never handed over are picked up here.
            self._wake.notify()

    def _on_disconnect(self, _c: Any, _u: Any, _f: Any, rc: Any, _p: Any = None) -> None:
        with self._wake:
            if not self._stop:
                log.warning("disconnected from MQTT broker (%s); outbox keeps every message", rc)
            self._connected = False

    def _on_publish(self, _c: Any, _u: Any, mid: int, _rc: Any, _p: Any) -> None:
        with self._wake:
            row = self._inflight.pop(mid, None)
            if row is None:
                return
            self.outbox.remove([row])
            self.published += 1
            self._wake.notify()

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._stop and (
                    not self._connected or len(self._inflight) >= self.window
                ):
                    self._wake.wait(1.0)
                if self._stop:
                    return
                room = self.window - len(self._inflight)
                rows = self.outbox.pending(after_id=self._handed_up_to, limit=room)
                for row in rows:
                    info = self._client.publish(row.topic, row.payload, qos=1)
                    self._inflight[info.mid] = row.id
                    self._handed_up_to = row.id
                if not rows:
                    self._wake.wait(1.0)

    def drain(self, timeout_s: float) -> bool:
        """Wait until the outbox is empty (every message acknowledged)."""
        with self._wake:
            return self._wake.wait_for(
                lambda: not self._inflight and self.outbox.depth() == 0, timeout=timeout_s
            )

    def stop(self) -> None:
        with self._wake:
            self._stop = True
            self._wake.notify_all()
        self._thread.join(timeout=5)
        info = self._client.publish(
            status_topic(self.gateway), json.dumps({"state": "offline"}), qos=1, retain=True
        )
        if info.rc == mqtt.MQTT_ERR_SUCCESS:
            info.wait_for_publish(timeout=2)
        self._client.disconnect()
        self._client.loop_stop()
