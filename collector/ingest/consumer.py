"""MQTT consumer: receive, decide (domain), store (port), then acknowledge.

A message is acknowledged to the broker only after it is committed or quarantined, so a
collector crash never loses one: the broker delivers it again and the store de-duplicates.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass, replace
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from collector.config import CollectorMqtt
from collector.ingest.recompute import CalCheck, check
from collector.ingest.rules import Accepted, AcceptedEvent, Reason, Rejected, judge
from collector.ingest.trust import KeyRing
from collector.ledger.port import Outcome, Store
from collector.metrology.calibration_sets import CalibrationService
from metertrace.config import mqtt_protocol
from metertrace.wire import TOPIC_ROOT

log = logging.getLogger(__name__)


@dataclass
class _Incoming:
    topic: str
    payload: bytes
    mid: int
    qos: int


class MqttConsumer:
    def __init__(
        self,
        settings: CollectorMqtt,
        store: Store,
        ring: KeyRing,
        *,
        batch_size: int = 500,
    ) -> None:
        self.settings, self.store, self.ring = settings, store, ring
        self.calibration: CalibrationService | None = None
        self.batch_size = batch_size
        self.connected = False
        self._queue: queue.Queue[_Incoming] = queue.Queue()
        self._stop = threading.Event()
        self._writer = threading.Thread(target=self._write_loop, name="ingest", daemon=True)
        v5 = settings.protocol == "5"
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=settings.client_id or "metertrace-collector",
            protocol=mqtt_protocol(settings),
            # 3.1.1 has no session expiry: a persistent session is how the broker keeps our queue
            clean_session=None if v5 else False,
            manual_ack=True,
        )
        if settings.username:
            self._client.username_pw_set(settings.username, settings.password)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message
        self._client.reconnect_delay_set(min_delay=1, max_delay=30)

    @property
    def topics(self) -> list[str]:
        """Readings and events (data-loss reports) of every gateway."""
        kinds = [f"{TOPIC_ROOT}/+/readings/+", f"{TOPIC_ROOT}/+/events/+"]
        if self.settings.shared_group:
            return [f"$share/{self.settings.shared_group}/{t}" for t in kinds]
        return kinds

    def start(self) -> None:
        self._writer.start()
        if self.settings.protocol == "5":
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = self.settings.session_expiry_s
            self._client.connect_async(
                self.settings.host,
                self.settings.port,
                keepalive=self.settings.keepalive_s,
                clean_start=False,
                properties=props,
            )
        else:
            self._client.connect_async(
                self.settings.host, self.settings.port, keepalive=self.settings.keepalive_s
            )
        self._client.loop_start()

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()
        self._stop.set()
        self._writer.join(timeout=10)

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, rc: Any, _p: Any = None) -> None:
        if rc.is_failure:
            log.error("MQTT broker refused the collector: %s", rc)
            return
        self.connected = True
        client.subscribe([(t, 1) for t in self.topics])
        log.info(
            "collector subscribed to %s on %s:%s",
            ", ".join(self.topics),
            self.settings.host,
            self.settings.port,
        )

    def _on_disconnect(self, _c: Any, _u: Any, _f: Any, rc: Any, _p: Any = None) -> None:
        self.connected = False
        log.warning("collector disconnected from MQTT broker: %s", rc)

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        self._queue.put(_Incoming(msg.topic, bytes(msg.payload), msg.mid, msg.qos))

    def _write_loop(self) -> None:
        while not self._stop.is_set():
            try:
                first = self._queue.get(timeout=0.2)
            except queue.Empty:
                continue
            batch = [first]
            while len(batch) < self.batch_size:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                self._process(batch)
            except Exception:
                # The store failed (disk full, locked): nothing is acked, so the broker keeps the
                # messages and re-delivers them on the next session.
                log.exception("store failed; %d messages stay unacknowledged", len(batch))
                time.sleep(1.0)
                continue
            for item in batch:
                if item.qos > 0:
                    self._client.ack(item.mid, item.qos)

    def publish_retained(self, topic: str, payload: bytes) -> None:
        self._client.publish(topic, payload, qos=1, retain=True)

    def _judge(self, item: _Incoming) -> Accepted | AcceptedEvent:
        judged = self._judge_signed(item)
        if isinstance(judged, Accepted) and self.calibration is not None:
            lookup = self.calibration.lookup
            checks = tuple(check(r, lookup) for r in judged.message.readings)
            if any(c is not None for c in checks):
                bad = [
                    r.quantity
                    for r, c in zip(judged.message.readings, checks, strict=True)
                    if c not in (None, CalCheck.OK)
                ]
                if bad:
                    log.error(
                        "%s seq %d: calibrated values of %s do not recompute from their "
                        "certificate",
                        judged.message.device,
                        judged.message.seq,
                        bad,
                    )
                judged = replace(judged, cal_checks=tuple(c and c.value for c in checks))
        return judged

    def _judge_signed(self, item: _Incoming) -> Accepted | AcceptedEvent:
        try:
            return judge(item.topic, item.payload, self.ring.current())
        except Rejected as rej:
            # a key or device registered since the ring was loaded: look once more
            retry = rej.reason in (
                Reason.UNKNOWN_KEY,
                Reason.UNKNOWN_DEVICE,
                Reason.UNKNOWN_GATEWAY,
            )
            if retry and self.ring.reload():
                return judge(item.topic, item.payload, self.ring.current())
            raise

    def _process(self, batch: list[_Incoming]) -> None:
        # A key retired or a device moved since the last batch must apply to this one: a retired
        # key is known, so judging alone would never ask for a reload. One query per batch.
        self.ring.reload()
        accepted: list[tuple[_Incoming, Accepted]] = []
        events: list[tuple[_Incoming, AcceptedEvent]] = []
        for item in batch:
            try:
                judged = self._judge(item)
                if isinstance(judged, AcceptedEvent):
                    events.append((item, judged))
                else:
                    accepted.append((item, judged))
            except Rejected as rej:
                log.warning("quarantined message on %s: %s", item.topic, rej)
                self.store.quarantine(item.topic, item.payload, rej.reason.value, rej.detail)
            except Exception as exc:  # a bug must not stall the queue behind one message
                log.exception("unexpected error judging a message on %s", item.topic)
                self.store.quarantine(item.topic, item.payload, "internal_error", repr(exc))
        if events:
            self._store_events(events)
        if not accepted:
            return
        outcomes = self.store.ingest([a for _, a in accepted])
        for (item, a), outcome in zip(accepted, outcomes, strict=True):
            if outcome is Outcome.CONFLICT:
                detail = (
                    f"{a.message.device} seq {a.message.seq} differs from the stored "
                    "message with that number"
                )
                log.error("quarantined conflicting message: %s", detail)
                self.store.quarantine(item.topic, item.payload, Reason.CONFLICT.value, detail)

    def _store_events(self, events: list[tuple[_Incoming, AcceptedEvent]]) -> None:
        outcomes = self.store.ingest_events([e for _, e in events])
        for (item, e), outcome in zip(events, outcomes, strict=True):
            loss, counter = e.event.data_loss, e.event.counter
            if outcome is Outcome.STORED and counter is not None:
                log.warning(
                    "gateway %s reports a counter %s of %s %s: %g %s at %s -> %g at %s",
                    e.event.gateway,
                    counter.kind,
                    e.event.device,
                    counter.quantity,
                    counter.before,
                    counter.unit,
                    counter.ts_before.isoformat(),
                    counter.after,
                    counter.ts_after.isoformat(),
                )
            elif outcome is Outcome.STORED and loss is not None:
                log.warning(
                    "gateway %s reports %s: %d messages of %s lost (seq %s..%s, polled %s..%s)",
                    e.event.gateway,
                    loss.reason.value,
                    loss.count,
                    e.event.device,
                    loss.first_seq,
                    loss.last_seq,
                    loss.first_ts.isoformat(),
                    loss.last_ts.isoformat(),
                )
            elif outcome is Outcome.CONFLICT:
                detail = f"event {e.event.id} of {e.event.gateway} differs from the stored one"
                log.error("quarantined conflicting event: %s", detail)
                self.store.quarantine(item.topic, item.payload, Reason.CONFLICT.value, detail)
