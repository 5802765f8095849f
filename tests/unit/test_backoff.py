import pytest

from edge_agent.backoff import Backoff

pytestmark = pytest.mark.unit


def run(b: Backoff, outcomes: str) -> str:
    """Feed scheduled polls: 'x' a failed poll, 'o' an answered one; returns what happened
    to each ('x'/'o' when polled, '-' when skipped). A skipped poll consumes no outcome."""
    out, todo = "", list(outcomes)
    while todo:
        if b.should_poll():
            result = todo.pop(0)
            b.failed() if result == "x" else b.succeeded()
            out += result
        else:
            out += "-"
    return out


def test_skips_grow_exponentially_after_the_threshold():
    # two failures are tolerated, then 1, 2, 4, 8 polls are skipped
    assert run(Backoff(threshold=2, max_skip=100), "xxxxx") == "xx" + "-x" + "--x" + "----x"


def test_skips_are_capped():
    assert run(Backoff(threshold=1, max_skip=3), "xxxxx") == "x-x--x---x---x"


def test_one_answer_resets_everything():
    b = Backoff(threshold=2, max_skip=100)
    assert run(b, "xxxxo") == "xx-x--x----o"
    assert (b.failures, b.to_skip, b.skipped, b.backing_off) == (0, 0, 0, False)
    assert run(b, "xo") == "xo", "a single failure after recovery is not backed off"


def test_skipped_polls_are_counted_until_the_device_answers():
    b = Backoff(threshold=1, max_skip=100)
    run(b, "xxx")  # x - x - - x
    assert (b.skipped, b.backing_off) == (3, True)


def test_for_interval_bounds_the_time_skipped():
    assert Backoff.for_interval(0.5).max_skip == 600  # 300 s of 0.5 s polls
    assert Backoff.for_interval(900).max_skip == 1  # a 15 min schedule skips at most one poll
    with pytest.raises(ValueError):
        Backoff(threshold=0)
