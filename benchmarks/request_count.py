"""Requests per poll: what the planner issues against what is possible and what is naive.

Pure. The minimum is computed independently of edge_agent.planning (an exact dynamic programme,
not the planner's greedy pass), so the comparison can show a planner that reads too much.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from device_profiles import Function, Point, Profile
from edge_agent.planning import plan_reads


@dataclass(frozen=True, slots=True)
class RequestCounts:
    profile: str
    points: int
    naive: int  # one request per value
    runs: int  # maximal runs joined across gaps <= max_gap: the bound if max_block were 125+
    minimum: int  # fewest requests within max_block and max_gap, no value split
    planned: int  # what the agent issues

    def as_dict(self) -> dict[str, int | str]:
        return {
            "profile": self.profile,
            "points": self.points,
            "naive": self.naive,
            "runs": self.runs,
            "minimum": self.minimum,
            "planned": self.planned,
        }


def _by_function(points: Iterable[Point]) -> list[list[Point]]:
    groups: dict[Function, list[Point]] = {}
    for p in points:
        groups.setdefault(p.function, []).append(p)
    # one request reads one function code, so each group is planned on its own
    return [sorted(g, key=lambda p: p.address) for g in groups.values()]


def maximal_runs(points: Iterable[Point], *, max_gap: int) -> int:
    runs = 0
    for group in _by_function(points):
        end: int | None = None
        for p in group:
            if end is None or p.address - end > max_gap:
                runs += 1
                end = p.end
            else:
                end = max(end, p.end)
    return runs


def minimum_requests(points: Iterable[Point], *, max_block: int, max_gap: int) -> int:
    """Fewest requests: each reads whole values, spans <= max_block, skips gaps <= max_gap.

    best[i] = fewest requests for the first i points (by address); a request covers points
    j..i-1 when every gap inside it is readable and its span fits one request.
    """
    total = 0
    for group in _by_function(points):
        n = len(group)
        best = [0] + [n + 1] * n
        for j in range(n):
            end = group[j].end
            for i in range(j + 1, n + 1):
                p = group[i - 1]
                if i > j + 1 and p.address - end > max_gap:
                    break
                end = max(end, p.end)
                if end - group[j].address > max_block:
                    break
                best[i] = min(best[i], best[j] + 1)
        total += best[n]
    return total


def count_requests(profile: Profile) -> RequestCounts:
    points = profile.points()
    block, gap = profile.modbus.max_block, profile.modbus.max_gap
    return RequestCounts(
        profile=profile.id,
        points=len(points),
        naive=len(points),
        runs=maximal_runs(points, max_gap=gap),
        minimum=minimum_requests(points, max_block=block, max_gap=gap),
        planned=len(plan_reads(points, max_block=block, max_gap=gap)),
    )
