import hashlib

import pytest

from edge_agent.outbox import Outbox
from metertrace.wire import GENESIS

pytestmark = pytest.mark.unit


def builder(device: str, log: list):
    def build(seq: int, prev: str):
        payload = f"{device}:{seq}:{prev}".encode()
        log.append((seq, prev))
        return f"t/{device}", payload, hashlib.sha256(payload).hexdigest()

    return build


def test_numbering_and_chaining_survive_a_restart(tmp_path):
    log: list = []
    box = Outbox(tmp_path / "a.db")
    assert box.append("m1", builder("m1", log)) == 1
    assert box.append("m1", builder("m1", log)) == 2
    assert box.append("m2", builder("m2", log)) == 1
    box.close()
    box = Outbox(tmp_path / "a.db")  # as after a restart
    assert box.append("m1", builder("m1", log)) == 3
    assert log[0] == (1, GENESIS)
    assert log[1][1] == hashlib.sha256(b"m1:1:" + GENESIS.encode()).hexdigest()
    assert log[3][1] == hashlib.sha256(f"m1:2:{log[1][1]}".encode()).hexdigest()
    assert [(p.device, p.seq) for p in box.pending()] == [
        ("m1", 1),
        ("m1", 2),
        ("m2", 1),
        ("m1", 3),
    ]


def test_failed_build_leaves_no_trace(tmp_path):
    box = Outbox(tmp_path / "a.db")

    def broken(seq, prev):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        box.append("m1", broken)
    assert box.depth() == 0 and box.last_seq("m1") == 0
    assert box.append("m1", builder("m1", [])) == 1


def test_remove_and_pending_after(tmp_path):
    box = Outbox(tmp_path / "a.db")
    for _ in range(5):
        box.append("m1", builder("m1", []))
    rows = box.pending()
    box.remove([rows[0].id, rows[2].id])
    assert [p.seq for p in box.pending()] == [2, 4, 5]
    assert [p.seq for p in box.pending(after_id=rows[3].id)] == [5]
