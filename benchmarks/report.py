"""The benchmark's result as a plain-text table (the JSON holds the same figures and more)."""

from __future__ import annotations

from typing import Any

MIB_PER_MB = 1e6 / 2**20


def render(result: dict[str, Any], *, ratio_goal: float, rss_goal_mb: float) -> str:
    s = result["setup"]
    m = result["machine"]
    out = [
        f"Modbus TCP benchmark: {s['devices']} devices behind {s['gateways']} gateways "
        f"(up to {s['per_gateway']} unit ids each), {s['cycles']} timed cycles, "
        f"{s['repeat']} rounds, meter answer delay {s['latency_ms']:g} ms, {s['signing']} "
        "signatures",
        f"machine: {m['nproc']} CPUs ({m['cpu']}), Python {m['python']}, pymodbus {m['pymodbus']}",
        f"code: {m['commit']}",
        "",
        "Requests per poll cycle",
        f"{'profile':28}{'devices':>8}{'values':>8}{'naive':>8}{'runs':>6}{'minimum':>9}"
        f"{'planned':>9}",
    ]
    for r in result["requests"]["profiles"]:
        out.append(
            f"{r['profile']:28}{r['devices']:>8}{r['points']:>8}{r['naive']:>8}{r['runs']:>6}"
            f"{r['minimum']:>9}{r['planned']:>9}"
        )
    c = result["requests"]["per_cycle"]
    out += [
        f"{'whole plant, one cycle':28}{'':>8}{c['points']:>8}{c['naive']:>8}{c['runs']:>6}"
        f"{c['minimum']:>9}{c['planned']:>9}",
        "",
        "Throughput (median round; a reading is one quantity value)",
        f"{'mode':32}{'readings/s':>11}{'req/s':>8}{'ratio':>7}{'missing':>8}{'CPU µs/rd':>10}"
        "  busy: bench/sim/broker",
    ]
    t = result["throughput"]
    for mode, row in t["median"].items():
        ratio = t["ratio"].get(mode, 1.0)
        busy = row["busy"]
        out.append(
            f"{row['mode']:32}{row['readings_per_s']:>11.0f}{row['requests_per_s']:>8.0f}"
            f"{ratio:>7.2f}{row['missing']:>8}{row['cpu_us_per_reading']:>10.0f}"
            f"  {busy['bench']:.2f}/{busy['simulator']:.2f}/{busy['mosquitto']:.2f}"
        )
    for mode, ratio in t["ratio"].items():
        verdict = "met" if ratio >= ratio_goal else "NOT MET"
        out.append(
            f"ratio {mode} / baseline: {ratio:.2f} (each round: {t['paired_ratios'][mode]}); "
            f"goal >= {ratio_goal}: {verdict}"
        )
    if "rss" in result:
        r = result["rss"]
        goal_mib = rss_goal_mb * MIB_PER_MB
        verdict = "met" if r["peak_mib"] <= goal_mib else "NOT MET"
        out += [
            "",
            f"Agent RSS: `metertrace agent run`, {s['devices']} devices every "
            f"{r['interval_s']:g} s, {r['window_s']:.0f} s window after {r['startup_s']:.1f} s "
            "start-up",
            f"steady (median) {r['steady_mib']:.1f} MiB, peak (VmHWM) {r['peak_mib']:.1f} MiB; "
            f"goal <= {rss_goal_mb:g} MB ({goal_mib:.1f} MiB): {verdict}",
            f"window: first {r['first_mib']:.1f} MiB, last {r['last_mib']:.1f} MiB",
            f"context: idle `import edge_agent.runner` {r['idle_import_edge_agent_runner_mib']:.1f}"
            f" MiB, bare interpreter {r['idle_interpreter_mib']:.1f} MiB",
            f"polled: {r['messages']} messages, >= {r['min_cycles_per_device']} cycles per "
            f"device, {r['overruns']} overruns, exit code {r['exit_code']}",
        ]
    out += ["", f"command: {result['command']}"]
    return "\n".join(out)
