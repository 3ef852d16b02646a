#!/usr/bin/env python3
"""compare.sh's tables: medians of our RESULT lines and etcd's, side by side.

Usage: table.py results.jsonl
Each line is a RESULT json with "side" ("ours" or "etcd") and "case" added by compare.sh.
Prints markdown: the main figures, the size sweep (throughput, then cost and memory), K peers
per node, and the loopback TCP limit, each with its target where the issue set one.
"""
import datetime
import json
import os
import platform
import statistics
import sys
from collections import defaultdict

CPU = ["sender_cpu_us_per_unit", "receiver_cpu_us_per_unit"]
GO_HTTP_CPU = ["client_cpu_us_per_req", "server_cpu_us_per_req"]

# (case, figure, our keys, etcd keys, better, target ratio ours/etcd)
FIGURES = [
    ("w1_retry", "W1 max sustained delivered msg/s", ["delivered_per_s"], ["delivered_per_s"], "higher", 3.0),
    ("w1_retry", "W1 CPU µs/msg, sender + receiver", CPU, CPU, "lower", 1 / 3),
    ("w1_retry", "W1 CPU µs/msg, sender", CPU[:1], CPU[:1], "lower", None),
    ("w1_retry", "W1 CPU µs/msg, receiver", CPU[1:], CPU[1:], "lower", None),
    ("w1_retry", "W1 peak RSS KiB, sender", ["sender_hwm_kb"], ["sender_hwm_kb"], "lower", None),
    ("w1_retry", "W1 peak RSS KiB, receiver", ["receiver_hwm_kb"], ["receiver_hwm_kb"], "lower", None),
    ("w2_16MiBx8_serial", "W2 16 MiB ×8 serial MB/s", ["mb_per_s"], ["mb_per_s"], "higher", None),
    ("w2_64MiBx4_serial", "W2 64 MiB ×4 serial MB/s", ["mb_per_s"], ["mb_per_s"], "higher", 2.0),
    ("w2_64MiBx4_burst", "W2 64 MiB ×4 burst MB/s", ["mb_per_s"], ["mb_per_s"], "higher", None),
    ("w2_64MiBx4_burst", "W2 64 MiB ×4 burst peak RSS KiB, receiver", ["receiver_hwm_kb"], ["receiver_hwm_kb"], "lower", 1 / 3),
    ("w2_64MiBx4_burst", "W2 64 MiB ×4 burst peak RSS KiB, sender", ["sender_hwm_kb"], ["sender_hwm_kb"], "lower", None),
    ("w3_latency", "W3 round trip p50 µs", ["rtt_us_p50"], ["rtt_us_p50"], "lower", 0.5),
    ("w3_latency", "W3 round trip p99 µs", ["rtt_us_p99"], ["rtt_us_p99"], "lower", 0.5),
    ("w3_latency", "W3 one way (A send → B process) p50 µs", ["oneway_us_p50"], ["oneway_us_p50"], "lower", None),
    ("w3_latency", "W3 one way (A send → B process) p99 µs", ["oneway_us_p99"], ["oneway_us_p99"], "lower", None),
    ("w1s_window", "W1 over streams msg/s, lossless", ["delivered_per_s"], ["delivered_per_s"], "higher", 1.5),
    ("w1s_window", "W1 over streams CPU µs/msg, sender + receiver", CPU, CPU, "lower", 1.0),
    ("w1s_window", "W1 over streams CPU µs/msg, sender", CPU[:1], CPU[:1], "lower", 1.0),
    ("w1s_window", "W1 over streams CPU µs/msg, receiver", CPU[1:], CPU[1:], "lower", 1.0),
    ("w1s_window", "W1 over streams peak RSS KiB, sender", ["sender_hwm_kb"], ["sender_hwm_kb"], "lower", None),
    ("w1s_window", "W1 over streams peak RSS KiB, receiver", ["receiver_hwm_kb"], ["receiver_hwm_kb"], "lower", None),
    ("w3s_latency", "W3 over streams round trip p50 µs", ["rtt_us_p50"], ["rtt_us_p50"], "lower", 1.0),
    ("w3s_latency", "W3 over streams round trip p99 µs", ["rtt_us_p99"], ["rtt_us_p99"], "lower", 1.0),
    ("w3s_latency", "W3 over streams one way (A send → B process) p50 µs", ["oneway_us_p50"], ["oneway_us_p50"], "lower", None),
    ("w3s_latency_1cpu", "W3 over streams, both on one CPU, round trip p50 µs", ["rtt_us_p50"], ["rtt_us_p50"], "lower", None),
    ("w3s_latency_1cpu", "W3 over streams, both on one CPU, round trip p99 µs", ["rtt_us_p99"], ["rtt_us_p99"], "lower", None),
    ("floor", "Floor req/s (bare awc/actix-web vs bare Go net/http)", ["delivered_per_s"], ["req_per_s"], "higher", None),
    ("floor", "Floor CPU µs/req, client + server", CPU, GO_HTTP_CPU, "lower", None),
]

SWEEP = [("sweep_64B", "64 B"), ("sweep_1KiB", "1 KiB"), ("sweep_16KiB", "16 KiB"),
         ("sweep_256KiB", "256 KiB"), ("sweep_1MiB", "1 MiB")]
PEERS = [1, 4, 16, 64]


def value(r, keys):
    """One run's figure: a key, or the sum of several keys."""
    vals = [r.get(k) for k in keys]
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in vals):
        return sum(vals)
    return None


def median(runs, case, keys):
    """(median, number of runs) of a figure over a case's runs; (None, 0) without any."""
    vals = [v for v in (value(r, keys) for r in runs.get(case, [])) if v is not None]
    return (statistics.median(vals), len(vals)) if vals else (None, 0)


def fmt(v):
    if v is None:
        return "–"
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:,.1f}" if abs(v) >= 1 else f"{v:,.2f}"


def ratio(o, e):
    return None if o is None or e is None or e == 0 else o / e


def target_cell(r, better, target):
    if r is None or target is None:
        return ""
    met = r >= target if better == "higher" else r <= target
    want = f"≥ {target:g}×" if better == "higher" else f"≤ {target:.2f}×"
    return f"{want}: {'met' if met else 'NOT met'}"


def ratio_cell(r):
    return "–" if r is None else f"{r:.2f}×"


def main_table(ours, etcd):
    rows = []
    for case, figure, okeys, ekeys, better, target in FIGURES:
        (o, on), (e, en) = median(ours, case, okeys), median(etcd, case, ekeys)
        if on == 0 and en == 0:
            continue
        r = ratio(o, e)
        rows.append(f"| {figure} | {fmt(o)} ({on}) | {fmt(e)} ({en}) | {ratio_cell(r)} | {target_cell(r, better, target)} |")
    share = actor_layer(ours, etcd)
    if share:
        rows.append(share)
    return table(["figure", "ours", "etcd 3.4.23", "ratio", "target"], rows)


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


def table(header, rows):
    if not rows:
        return []
    return [f"| {' | '.join(header)} |", "|" + "---|" * len(header)] + rows


def pct(v, limit):
    return "–" if v is None or not limit else f"{v / limit:.0%}"


def kib_to_mib(v):
    return None if v is None else v / 1024


def sweep_tables(ours, etcd, tcp):
    thr, cost = [], []
    for case, label in SWEEP:
        (o, on), (e, en) = median(ours, case, ["delivered_per_s"]), median(etcd, case, ["delivered_per_s"])
        if on == 0 and en == 0:
            continue
        r = ratio(o, e)
        omb, _ = median(ours, case, ["mb_per_s"])
        emb, _ = median(etcd, case, ["mb_per_s"])
        thr.append(f"| {label} | {fmt(o)} ({on}) | {fmt(e)} ({en}) | {ratio_cell(r)} | {target_cell(r, 'higher', 2.0)} "
                   f"| {fmt(omb)} | {fmt(emb)} | {pct(omb, tcp)} | {pct(emb, tcp)} |")
        cells = [label]
        for keys in (CPU[:1], CPU[1:]):
            cells += [fmt(median(ours, case, keys)[0]), fmt(median(etcd, case, keys)[0])]
        for key in ("sender_hwm_kb", "receiver_hwm_kb"):
            cells += [fmt(kib_to_mib(median(ours, case, [key])[0])), fmt(kib_to_mib(median(etcd, case, [key])[0]))]
        cost.append("| " + " | ".join(cells) + " |")
    out = table(["entry", "msg/s ours", "msg/s etcd", "ratio", "target", "MB/s ours", "MB/s etcd",
                 "of loopback TCP, ours", "of loopback TCP, etcd"], thr)
    if cost:
        out += [""] + table(["entry", "CPU µs/msg A, ours", "A, etcd", "CPU µs/msg B, ours", "B, etcd",
                             "peak RSS MiB A, ours", "A, etcd", "peak RSS MiB B, ours", "B, etcd"], cost)
    return out


def sweep_verdicts(ours, etcd, tcp):
    """The issue's targets at 1 MiB: loopback share and sender memory."""
    lines = []
    omb, on = median(ours, "sweep_1MiB", ["mb_per_s"])
    if on and tcp:
        share = omb / tcp
        lines.append(f"- At 1 MiB entries ours moves {share:.0%} of the loopback TCP limit measured in this run "
                     f"({fmt(omb)} of {fmt(tcp)} MB/s); target ≥ 60 %: {'met' if share >= 0.6 else 'NOT met'}.")
    o_rss, _ = median(ours, "sweep_1MiB", ["sender_hwm_kb"])
    e_rss, _ = median(etcd, "sweep_1MiB", ["sender_hwm_kb"])
    r = ratio(o_rss, e_rss)
    if r is not None:
        lines.append(f"- Sender peak RSS at 1 MiB entries: ours {fmt(o_rss / 1024)} MiB, etcd {fmt(e_rss / 1024)} MiB "
                     f"({r:.2f}×); target ≤ 1×: {'met' if r <= 1 else 'NOT met'}.")
    return lines


def peers_table(ours, etcd):
    rows = []
    figures = [["delivered_per_s"], ["rss_per_peer_kb"], ["idle_sender_cpu_ms_per_s"],
               ["idle_sender_wakeups_per_s"], ["idle_receiver_wakeups_per_s"]]
    for k in PEERS:
        case = f"peers_{k}"
        if not ours.get(case) and not etcd.get(case):
            continue
        cells = [str(k)]
        for keys in figures:
            o, on = median(ours, case, keys)
            e, en = median(etcd, case, keys)
            cells += [fmt(o), fmt(e)]
        cells[1] += f" ({len(ours.get(case, []))})"
        cells[2] += f" ({len(etcd.get(case, []))})"
        rows.append("| " + " | ".join(cells) + " |")
    return table(["K", "total msg/s, ours", "etcd", "RSS KiB per peer, ours", "etcd",
                  "idle CPU ms/s A, ours", "etcd", "idle wake-ups/s A, ours", "etcd",
                  "idle wake-ups/s B, ours", "etcd"], rows)


def machine():
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            model = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{model}, {os.cpu_count()} CPUs, Linux {platform.release()}"


def load(path):
    sides = {"ours": defaultdict(list), "etcd": defaultdict(list)}
    with open(path) as f:
        for line in f:
            if line.strip():
                r = json.loads(line)
                if r.get("side") in sides:
                    sides[r["side"]][r["case"]].append(r)
    return sides["ours"], sides["etcd"]


def main(path):
    ours, etcd = load(path)
    tcp, tn = median(etcd, "ref_tcp", ["mb_per_s"])
    out = [f"Run of {datetime.date.today().isoformat()} on {machine()}.",
           "Medians over the kept runs (their count in parentheses); ratio = ours ÷ etcd's.", ""]
    out += main_table(ours, etcd)
    sweep = sweep_tables(ours, etcd, tcp)
    if sweep:
        out += ["", "Size sweep: W1 with one entry of each size per MsgApp (MB/s counts entry bytes, 10^6)."
                " Targets: ours ≥ 2× etcd's msg/s at every size.", ""] + sweep
        out += [""] + sweep_verdicts(ours, etcd, tcp)
    peers = peers_table(ours, etcd)
    if peers:
        out += ["", "K peers in node A (W1 dealt round-robin; one receiver process serves all K);"
                " idle figures over the idle window after the warm-up, wake-ups = voluntary context switches.", ""]
        out += peers
    if tn:
        out += ["", f"Loopback TCP limit (ref_tcp, one connection): {fmt(tcp)} MB/s ({tn})."]
    print("\n".join(out))


if __name__ == "__main__":
    main(sys.argv[1])
