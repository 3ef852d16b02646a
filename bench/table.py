#!/usr/bin/env python3
"""compare.sh's table: medians of our RESULT lines and etcd's, side by side.

Usage: table.py ours.jsonl etcd.jsonl
Each line is a RESULT json with a "case" field added by compare.sh.
"""
import datetime
import json
import os
import platform
import statistics
import sys
from collections import defaultdict


def value(r, keys):
    """One run's figure: a key, or the sum of several keys."""
    vals = [r.get(k) for k in keys]
    if all(isinstance(v, (int, float)) for v in vals):
        return sum(vals)
    return None


def median(runs, case, keys):
    vals = [v for v in (value(r, keys) for r in runs.get(case, [])) if v is not None]
    return (statistics.median(vals), len(vals)) if vals else (None, 0)


CPU = ["sender_cpu_us_per_unit", "receiver_cpu_us_per_unit"]
GO_HTTP_CPU = ["client_cpu_us_per_req", "server_cpu_us_per_req"]

# (our case, etcd case, figure, our keys, etcd keys, better, target ratio ours/etcd)
FIGURES = [
    ("w1_retry", "w1_retry", "W1 max sustained delivered msg/s", ["delivered_per_s"], ["delivered_per_s"], "higher", 3.0),
    ("w1_retry", "w1_retry", "W1 CPU µs/msg, sender + receiver", CPU, CPU, "lower", 1 / 3),
    ("w1_retry", "w1_retry", "W1 CPU µs/msg, sender", CPU[:1], CPU[:1], "lower", None),
    ("w1_retry", "w1_retry", "W1 CPU µs/msg, receiver", CPU[1:], CPU[1:], "lower", None),
    ("w1_retry", "w1_retry", "W1 peak RSS KiB, sender", ["sender_hwm_kb"], ["sender_hwm_kb"], "lower", None),
    ("w1_retry", "w1_retry", "W1 peak RSS KiB, receiver", ["receiver_hwm_kb"], ["receiver_hwm_kb"], "lower", None),
    ("w2_16MiBx8_serial", "w2_16MiBx8_serial", "W2 16 MiB ×8 serial MB/s", ["mb_per_s"], ["mb_per_s"], "higher", None),
    ("w2_64MiBx4_serial", "w2_64MiBx4_serial", "W2 64 MiB ×4 serial MB/s", ["mb_per_s"], ["mb_per_s"], "higher", 2.0),
    ("w2_64MiBx4_burst", "w2_64MiBx4_burst", "W2 64 MiB ×4 burst MB/s", ["mb_per_s"], ["mb_per_s"], "higher", None),
    ("w2_64MiBx4_burst", "w2_64MiBx4_burst", "W2 64 MiB ×4 burst peak RSS KiB, receiver", ["receiver_hwm_kb"], ["receiver_hwm_kb"], "lower", 1 / 3),
    ("w2_64MiBx4_burst", "w2_64MiBx4_burst", "W2 64 MiB ×4 burst peak RSS KiB, sender", ["sender_hwm_kb"], ["sender_hwm_kb"], "lower", None),
    ("w3_latency", "w3_latency", "W3 round trip p50 µs", ["rtt_us_p50"], ["rtt_us_p50"], "lower", 0.5),
    ("w3_latency", "w3_latency", "W3 round trip p99 µs", ["rtt_us_p99"], ["rtt_us_p99"], "lower", 0.5),
    ("w3_latency", "w3_latency", "W3 one way (A send → B process) p50 µs", ["oneway_us_p50"], ["oneway_us_p50"], "lower", None),
    ("w3_latency", "w3_latency", "W3 one way (A send → B process) p99 µs", ["oneway_us_p99"], ["oneway_us_p99"], "lower", None),
    ("floor", "floor", "Floor req/s (bare awc/actix-web vs bare Go net/http)", ["delivered_per_s"], ["req_per_s"], "higher", None),
    ("floor", "floor", "Floor CPU µs/req, client + server", CPU, GO_HTTP_CPU, "lower", None),
]


def fmt(v):
    if v is None:
        return "–"
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:,.1f}"


def ratio_cell(ours, etcd, better, target):
    if ours is None or etcd is None or etcd == 0:
        return "–", "–"
    r = ours / etcd
    if target is None:
        return f"{r:.2f}×", ""
    met = r >= target if better == "higher" else r <= target
    want = f"≥ {target:g}×" if better == "higher" else f"≤ {target:.2f}×"
    return f"{r:.2f}×", f"{want}: {'met' if met else 'NOT met'}"


def rows(ours, etcd):
    for oc, ec, figure, okeys, ekeys, better, target in FIGURES:
        o, on = median(ours, oc, okeys)
        e, en = median(etcd, ec, ekeys)
        if on == 0 and en == 0:
            continue
        r, t = ratio_cell(o, e, better, target)
        yield f"| {figure} | {fmt(o)} ({on}) | {fmt(e)} ({en}) | {r} | {t} |"


def actor_layer(ours, etcd):
    """W1 throughput as a share of its own floor, for both stacks."""
    o_w1, _ = median(ours, "w1_retry", ["delivered_per_s"])
    o_fl, _ = median(ours, "floor", ["delivered_per_s"])
    e_w1, _ = median(etcd, "w1_retry", ["delivered_per_s"])
    e_fl, _ = median(etcd, "floor", ["req_per_s"])
    if None in (o_w1, o_fl):
        return None
    share = o_w1 / o_fl
    etcd_share = f"{e_w1 / e_fl:.0%}" if None not in (e_w1, e_fl) else "–"
    verdict = "met" if share >= 0.85 else "NOT met"
    return f"| W1 msg/s as a share of the floor's | {share:.0%} | {etcd_share} | | ≥ 85%: {verdict} |"


def machine():
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            model = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{model}, {os.cpu_count()} CPUs, Linux {platform.release()}"


def load(path):
    runs = defaultdict(list)
    with open(path) as f:
        for line in f:
            if line.strip():
                r = json.loads(line)
                runs[r["case"]].append(r)
    return runs


def main(ours_path, etcd_path):
    ours, etcd = load(ours_path), load(etcd_path)
    print(f"Run of {datetime.date.today().isoformat()} on {machine()}.")
    print("Medians over the accepted runs (their count in parentheses); ratio = ours ÷ etcd's.")
    print()
    print("| figure | ours | etcd 3.4.23 | ratio | target |")
    print("|---|---|---|---|---|")
    for row in rows(ours, etcd):
        print(row)
    share = actor_layer(ours, etcd)
    if share:
        print(share)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
