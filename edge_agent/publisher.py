"""MQTT publishing from the outbox (paho-mqtt, QoS 1, at least once).

One thread owns the in-flight bookkeeping. paho's callbacks only post events to a queue and
take none of our locks: paho calls them while holding its own, so any lock shared with them
invites a lock-order deadlock. Rows are handed to paho in outbox order while connected, at most
`window` unacknowledged, so memory stays bounded however long the broker is away. A row leaves
the outbox only on its PUBACK.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from metertrace.config import MqttSettings, mqtt_protocol
from metertrace.wire import status_topic

from .outbox import Outbox

log = logging.getLogger(__name__)

_WAKE, _ACK, _CONNECTED, _DISCONNECTED, _STOP = range(5)


class Publisher:
    def __init__(
        self, settings: MqttSettings, gateway: str, outbox: Outbox, *, window: int = 50
    ) -> None:
        self.outbox, self.gateway, self.window = outbox, gateway, window
        self._settings = settings
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=settings.client_id or f"metertrace-agent-{gateway}",
            protocol=mqtt_protocol(settings),
        )
        if settings.username:
            self._client.username_pw_set(settings.username, settings.password)
        self._client.will_set(status_topic(gateway), self._status("offline"), qos=1, retain=True)
        self._client.reconnect_delay_set(min_delay=1, max_delay=30)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_publish = self._on_publish
        self._events: queue.SimpleQueue[tuple[int, int]] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="publisher", daemon=True)
        # Owned by the publisher thread only:
        self._inflight: dict[int, int] = {}  # paho mid -> outbox row id
        self._handed_up_to = 0  # outbox id of the last row given to paho in this session
        self._connected = False
        # Read by other threads:
        self._idle = threading.Condition()
        self._is_idle = False
        self.published = 0
        self.stopping = False

    @staticmethod
    def _status(state: str) -> str:
        return json.dumps({"state": state})

    def start(self) -> None:
        self._client.connect_async(
            self._settings.host, self._settings.port, keepalive=self._settings.keepalive_s
        )
        self._client.loop_start()
        self._thread.start()

    def notify(self) -> None:
        """A new row is in the outbox: not idle until the publisher thread has seen it acked."""
        with self._idle:
            self._is_idle = False
        self._events.put((_WAKE, 0))

    # --- paho callbacks (network thread): post an event, nothing else ----------------------
    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, rc: Any, _p: Any = None) -> None:
        if rc.is_failure:
            log.error(
                "MQTT broker %s:%s refused the connection: %s",
                self._settings.host,
                self._settings.port,
                rc,
            )
            return
        log.info("connected to MQTT broker %s:%s", self._settings.host, self._settings.port)
        client.publish(status_topic(self.gateway), self._status("online"), qos=1, retain=True)
        self._events.put((_CONNECTED, 0))

    def _on_disconnect(self, _c: Any, _u: Any, _f: Any, rc: Any, _p: Any = None) -> None:
        if not self.stopping:
            log.warning("disconnected from MQTT broker (%s); the outbox keeps every message", rc)
        self._events.put((_DISCONNECTED, 0))

    def _on_publish(self, _c: Any, _u: Any, mid: int, _rc: Any, _p: Any) -> None:
        self._events.put((_ACK, mid))

    # --- publisher thread ------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            try:
                kind, mid = self._events.get(timeout=1.0)
            except queue.Empty:
                kind, mid = _WAKE, 0
            if kind == _STOP:
                return
            if kind == _CONNECTED:
                self._connected = True
            elif kind == _DISCONNECTED:
                self._connected = False
            elif kind == _ACK:
                # Acks of status messages match no row and are ignored.
                row = self._inflight.pop(mid, None)
                if row is not None:
                    self.outbox.remove([row])
                    self.published += 1
            self._hand_over()
            self._set_idle(not self._inflight and self.outbox.depth() == 0)

    def _hand_over(self) -> None:
        room = self.window - len(self._inflight)
        if not self._connected or room <= 0:
            return
        for row in self.outbox.pending(after_id=self._handed_up_to, limit=room):
            info = self._client.publish(row.topic, row.payload, qos=1)
            # An ack for this mid can only be read by this thread, after this line.
            self._inflight[info.mid] = row.id
            self._handed_up_to = row.id

    def _set_idle(self, idle: bool) -> None:
        with self._idle:
            self._is_idle = idle
            if idle:
                self._idle.notify_all()

    def drain(self, timeout_s: float) -> bool:
        """Wait until every message in the outbox is acknowledged."""
        self.notify()  # re-check now, even when nothing was appended since the last check
        with self._idle:
            return self._idle.wait_for(lambda: self._is_idle, timeout=timeout_s)

    def stop(self) -> None:
        self.stopping = True
        self._events.put((_STOP, 0))
        self._thread.join(timeout=5)
        info = self._client.publish(
            status_topic(self.gateway), self._status("offline"), qos=1, retain=True
        )
        if info.rc == mqtt.MQTT_ERR_SUCCESS:
            info.wait_for_publish(timeout=2)
        self._client.disconnect()
        self._client.loop_stop()
