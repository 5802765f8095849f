"""MQTT publishing from the outbox (paho-mqtt, QoS 1, at least once).

One thread owns the in-flight bookkeeping. paho's callbacks only post events to a queue and
take none of our locks: paho calls them while holding its own, so any lock shared with them
invites a lock-order deadlock. Rows are handed to paho in outbox order while connected, at most
`window` unacknowledged, so memory stays bounded however long the broker is away. A row leaves
the outbox only on its PUBACK.

Order after a reconnect: paho re-sends the messages it holds unacknowledged, in the order they
were first published (its `_out_messages` is insertion-ordered), but only after it has called
on_connect. So that no new row overtakes them, nothing new is handed over until every message
of the previous connection is acknowledged. paho's own in-flight limit is set to the window so
it never queues a message behind our back (a queued message could be overtaken too).
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from metertrace.calibration_set import calibration_topic
from metertrace.config import MqttSettings, mqtt_protocol
from metertrace.wire import status_topic

from .outbox import EventBuilder, Outbox

log = logging.getLogger(__name__)

_WAKE, _ACK, _CONNECTED, _DISCONNECTED, _STOP = range(5)
ENFORCE_EVERY_S = 1.0  # how often the outbox bounds are checked (cheap when within bounds)


class Publisher:
    def __init__(
        self,
        settings: MqttSettings,
        gateway: str,
        outbox: Outbox,
        *,
        event_builder: EventBuilder | None = None,
        window: int = 20,
        on_calibration: Callable[[bytes], None] | None = None,
    ) -> None:
        self.outbox, self.gateway, self.window = outbox, gateway, window
        self._settings = settings
        self._event_builder = event_builder
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=settings.client_id or f"metertrace-agent-{gateway}",
            protocol=mqtt_protocol(settings),
        )
        if settings.username:
            self._client.username_pw_set(settings.username, settings.password)
        self._client.will_set(status_topic(gateway), _state("offline"), qos=1, retain=True)
        self._client.reconnect_delay_set(min_delay=1, max_delay=30)
        self._client.max_inflight_messages_set(window)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_publish = self._on_publish
        self._on_calibration = on_calibration
        if on_calibration is not None:
            self._client.message_callback_add(
                calibration_topic(gateway), lambda _c, _u, m: on_calibration(bytes(m.payload))
            )
        self._events: queue.SimpleQueue[tuple[int, int]] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="publisher", daemon=True)
        # Owned by the publisher thread only:
        self._inflight: dict[int, int] = {}  # paho mid -> outbox row id
        self._handed_up_to = 0  # outbox id of the last row given to paho
        self._replaying = False  # paho is re-sending the previous connection's messages
        self._next_enforce = 0.0
        # Read by other threads:
        self._idle = threading.Condition()
        self._is_idle = False
        self._status = _state("online")
        self.connected = False
        self.published = 0
        self.stopping = False

    @property
    def in_flight(self) -> int:
        """Messages handed to paho and not yet acknowledged."""
        return len(self._inflight)

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

    def publish_status(self, payload: str) -> None:
        """Retain this as the gateway's status; sent now if connected, else on connect."""
        self._status = payload
        if self._client.is_connected():
            self._client.publish(status_topic(self.gateway), payload, qos=1, retain=True)

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
        self.connected = True
        client.publish(status_topic(self.gateway), self._status, qos=1, retain=True)
        if self._on_calibration is not None:
            client.subscribe(calibration_topic(self.gateway), qos=1)
        self._events.put((_CONNECTED, 0))

    def _on_disconnect(self, _c: Any, _u: Any, _f: Any, rc: Any, _p: Any = None) -> None:
        self.connected = False
        if not self.stopping:
            log.warning("disconnected from MQTT broker (%s); the outbox keeps every message", rc)
        self._events.put((_DISCONNECTED, 0))

    def _on_publish(self, _c: Any, _u: Any, mid: int, _rc: Any, _p: Any) -> None:
        self._events.put((_ACK, mid))

    # --- publisher thread ------------------------------------------------------------------
    def _next_events(self) -> list[tuple[int, int]]:
        """Everything waiting now (at least one, or a wake-up after a second): acks that arrive
        together are deleted together, one transaction and one fsync for all of them."""
        try:
            batch = [self._events.get(timeout=1.0)]
        except queue.Empty:
            return [(_WAKE, 0)]
        while len(batch) < 1000:
            try:
                batch.append(self._events.get_nowait())
            except queue.Empty:
                break
        return batch

    def _run(self) -> None:
        connected = False
        while True:
            acked: list[int] = []
            for kind, mid in self._next_events():
                if kind == _STOP:
                    self._acknowledged(acked)
                    return
                if kind == _CONNECTED:
                    connected = True
                    # paho re-sends what it holds; nothing new until all of it is acknowledged
                    self._replaying = bool(self._inflight)
                    if self._replaying:
                        log.info("re-sending %d unacknowledged messages first", len(self._inflight))
                elif kind == _DISCONNECTED:
                    connected = False
                elif kind == _ACK:
                    # Acks of status messages match no row and are ignored.
                    row = self._inflight.pop(mid, None)
                    if row is not None:
                        acked.append(row)
                    if not self._inflight:
                        self._replaying = False
            self._acknowledged(acked)
            try:
                self._enforce_bounds()
                if connected and not self._replaying:
                    self._hand_over()
            except Exception:  # this thread must outlive a bad moment of the disk or of paho
                log.exception("publisher: could not hand messages over; retrying")
            self._set_idle(not self._inflight and self.outbox.depth() == 0)

    def _acknowledged(self, rows: list[int]) -> None:
        if not rows:
            return
        try:
            self.outbox.remove(rows)
        except Exception:
            # The rows stay and are sent again after the next start: duplicates, not a loss.
            log.exception("publisher: could not delete %d acknowledged outbox rows", len(rows))
            return
        self.published += len(rows)

    def _enforce_bounds(self) -> None:
        now = time.monotonic()
        if self._event_builder is None or now < self._next_enforce:
            return
        self._next_enforce = now + ENFORCE_EVERY_S
        losses = self.outbox.enforce(self._event_builder, protect=set(self._inflight.values()))
        for loss in losses:
            log.error(
                "outbox bound %s: dropped %d unsent messages of %s (seq %s..%s, polled %s..%s); "
                "a data-loss event reports them to the collector",
                loss.reason.value,
                loss.count,
                loss.device,
                loss.first_seq,
                loss.last_seq,
                loss.first_ts.isoformat(),
                loss.last_ts.isoformat(),
            )

    def _hand_over(self) -> None:
        room = self.window - len(self._inflight)
        if room <= 0:
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

    def stop(self, final_status: str | None = None) -> None:
        self.stopping = True
        self._events.put((_STOP, 0))
        self._thread.join(timeout=5)
        info = self._client.publish(
            status_topic(self.gateway), final_status or _state("offline"), qos=1, retain=True
        )
        if info.rc == mqtt.MQTT_ERR_SUCCESS:
            info.wait_for_publish(timeout=2)
        self._client.disconnect()
        self._client.loop_stop()


def _state(state: str) -> str:
    return json.dumps({"state": state})
