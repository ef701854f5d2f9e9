"""The results: medians per case and body size, the flat-counter checks,
the tables, the ratio lines (`lambdagate/native cpu_per_request=...`,
`stream/floor ttfb=... throughput=...`, and the last line
`lambdagate/native throughput=<x> p99=<y>`), and the JSON file."""

from __future__ import annotations

import json
import os
import statistics
import time
from typing import TYPE_CHECKING

from .common import (
    AUTH_CASE,
    AUTH_NOCACHE_CASE,
    CASES,
    JWT_CASE,
    KEYED_CASE,
    KEYED_REDIS_CASE,
    KEYED_RLS_CASE,
    BASELINE_CASE,
    RENDERED_CASE,
    ACCESS_LOG_CASE,
    UDS_CASE,
    GRPC_CALLOUT_CASE,
    DEFAULT_PATH,
    OTHER_CASE,
    OTHER_PATH,
    SIZES,
    STREAM_BYTES,
    STREAM_CASES,
    STREAM_CHUNK,
    STREAM_CHUNKS,
    STREAM_PATH,
    fmt,
    is_lambdagate,
)

if TYPE_CHECKING:
    from .load import Load


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def summarize(runs: list[dict], cases, sizes) -> dict:
    out: dict = {}
    for size in sizes:
        for case in cases:
            sat = [r for r in runs if r["case"] == case and r["size"] == size and r["kind"] == "sat"]
            lat = [r for r in runs if r["case"] == case and r["size"] == size and r["kind"] == "lat"]
            if not sat:
                continue
            out[f"{case}/{size}"] = {
                "case": case,
                "size": size,
                "repetitions": len(sat),
                "rps": med([r["rps"] for r in sat]),
                "rps_all": [round(r["rps"], 1) for r in sat],
                "p50_ms": med([r["wrk"]["p50_us"] / 1000 for r in lat]),
                "p99_ms": med([r["wrk"]["p99_us"] / 1000 for r in lat]),
                "p999_ms": med([r["wrk"]["p999_us"] / 1000 for r in lat]),
                "p99_ms_all": [r["wrk"]["p99_us"] / 1000 for r in lat],
                "latency_run_rps": med([r["rps"] for r in lat]),
                "latency_run_requests": med([r["wrk"]["requests"] for r in lat]),
                "cpu_s_per_10k": med([r["cpu_s_per_10k"] for r in sat]),
                "envoy_cpu_s_per_10k": med([r["envoy_cpu_s_per_10k"] for r in sat]),
                "invoker_cpu_s_per_10k": med([r["invoker_cpu_s_per_10k"] for r in sat]),
                "latency_run_cpu_s_per_10k": med([r["cpu_s_per_10k"] for r in lat]),
                "invoker_peak_rss_kb": med([r["invoker_peak_rss_kb"] for r in sat + lat]),
                "invoker_peak_rss_kb_max": max((r["invoker_peak_rss_kb"] or 0) for r in sat + lat) or None,
                "envoy_peak_rss_kb": med([r["envoy_peak_rss_kb"] for r in sat + lat]),
                "errors": sum(r["errors"] for r in sat + lat),
                "other_load_cores": med([r["other_load_cores"] for r in sat + lat]),
            }
    return out


def summarize_stream(runs: list[dict]) -> dict:
    """Per case: medians of the successful fetches, and how many failed."""
    out: dict = {}
    for case in STREAM_CASES:
        mine = [r for r in runs if r["case"] == case]
        if not mine:
            continue
        good = [r for r in mine if r["ok"]]
        peaks = [r["invoker_peak_rss_kb"] for r in mine if r["invoker_peak_rss_kb"] is not None]
        out[case] = {
            "case": case,
            "fetches": len(mine),
            "failed": len(mine) - len(good),
            "ttfb_ms": med([r["ttfb_ms"] for r in good]),
            "total_ms": med([r["total_ms"] for r in good]),
            "mb_per_s": med([r["mb_per_s"] for r in good]),
            "ttfb_ms_all": [round(r["ttfb_ms"], 3) for r in good],
            "mb_per_s_all": [round(r["mb_per_s"], 1) for r in good],
            "envoy_cpu_ms": med([r["envoy_cpu_s"] * 1000 for r in good]),
            "invoker_cpu_ms": med([r["invoker_cpu_s"] * 1000 for r in good if r["invoker_cpu_s"] is not None]),
            "invoker_peak_rss_kb": med(peaks),
            "invoker_peak_rss_kb_max": max(peaks) if peaks else None,
            "invoker_rss_before_kb": med([r["invoker_rss_before_kb"] for r in mine]),
        }
    return out


def stream_table(summary: dict, reps: int) -> list[str]:
    if not summary:
        return []
    head = (
        f"{'case':<19} {'TTFB ms':>8} {'total ms':>9} {'MB/s':>7} {'Envoy CPU ms':>12} "
        f"{'invoker CPU ms':>14} {'inv RSS MB':>10} {'failed':>6}"
    )
    lines = [
        f"Streaming: GET {STREAM_PATH}, a {STREAM_BYTES // (1024 * 1024)} MiB response "
        f"({STREAM_CHUNKS} chunks of {STREAM_CHUNK // 1024} KiB), curl, {reps} fetch(es) per case (medians):",
        head,
        "-" * len(head),
    ]
    for s in summary.values():
        rss = s["invoker_peak_rss_kb_max"]
        lines.append(
            f"{s['case']:<19} {fmt(s['ttfb_ms'], '8.2f')} {fmt(s['total_ms'], '9.1f')} {fmt(s['mb_per_s'], '7.0f')} "
            f"{fmt(s['envoy_cpu_ms'], '12.0f')} {fmt(s['invoker_cpu_ms'], '14.0f')} "
            f"{fmt(None if rss is None else rss / 1024, '10.1f')} {s['failed']:>6}"
        )
    lines += [
        "floor: Envoy proxying the plain body from the stand-in (the baseline: the native aws_lambda",
        "filter cannot stream). lambdagate: InvokeWithResponseStream through the invoker and Envoy's",
        "router. TTFB: curl time_starttransfer. MB/s: 10^6 bytes over curl time_total. CPU ms per",
        "stream (/proc ticks, 10 ms steps). inv RSS MB: the invoker's peak RSS (VmHWM, reset before",
        "each stream), the highest over the fetches.",
    ]
    return lines


def stream_ratio_line(summary: dict) -> str | None:
    lg, fl = summary.get("lambdagate"), summary.get("floor")
    if not lg or not fl or not lg["ttfb_ms"] or not fl["ttfb_ms"] or not lg["mb_per_s"] or not fl["mb_per_s"]:
        return None
    return f"stream/floor ttfb={lg['ttfb_ms'] / fl['ttfb_ms']:.2f} throughput={lg['mb_per_s'] / fl['mb_per_s']:.2f}"


def legend(args) -> list[str]:
    lines = ["cases:"]
    lines += [f"  {c:<19} {CASES[c]}" for c in args.cases]
    loads = []
    for size in args.sizes:
        spec = SIZES[size]
        loads.append(
            f"  {size}: saturation wrk -t1 -c{spec['sat_conns']}; latency wrk -t1 -c{spec['lat_conns']} "
            f"paced to {spec['lat_rate']} req/s"
        )
    return lines + ["load (POST, JSON body, identical for every case):"] + loads


def table(summary: dict, sizes) -> str:
    head = (
        f"{'case':<19} {'body':>4} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'p99.9 ms':>8} {'@req/s':>7} "
        f"{'CPU s/10k':>9} {'Envoy':>6} {'invoker':>7} {'inv RSS MB':>10} {'errors':>6} {'other load':>10}"
    )
    lines = [head, "-" * len(head)]
    for size in sizes:
        for s in summary.values():
            if s["size"] != size:
                continue
            rss = s["invoker_peak_rss_kb"]
            inv_cpu = s["invoker_cpu_s_per_10k"] if is_lambdagate(s["case"]) else None
            lines.append(
                f"{s['case']:<19} {size:>4} {fmt(s['rps'], '8.0f')} "
                f"{fmt(s['p50_ms'], '7.2f')} {fmt(s['p99_ms'], '7.2f')} {fmt(s['p999_ms'], '8.2f')} "
                f"{fmt(s['latency_run_rps'], '7.0f')} {fmt(s['cpu_s_per_10k'], '9.3f')} "
                f"{fmt(s['envoy_cpu_s_per_10k'], '6.3f')} {fmt(inv_cpu, '7.3f')} "
                f"{fmt(None if rss is None else rss / 1024, '10.1f')} {s['errors']:>6} "
                f"{fmt(s['other_load_cores'], '5.2f') + ' cores':>10}"
            )
    lines += [
        "",
        "req/s: at saturation. p50/p99/p99.9: latency run at the fixed rate in @req/s (achieved).",
        "CPU s/10k: CPU seconds of Envoy + invoker per 10k requests at saturation (split after it).",
        "inv RSS MB: invoker peak RSS (VmHWM, reset before each run). other load: CPU used during the",
        "runs by processes outside the bench (other people's builds): the higher, the noisier.",
    ]
    return "\n".join(lines)


def flat_counters(load: Load) -> tuple[list[str], bool]:
    """The counters that must not move under load, over all measured runs."""
    lines: list[str] = []
    ok = True
    lg = [r for r in load.runs if is_lambdagate(r["case"])]
    if not lg:
        return ["(lambdagate not measured: no counters to check)"], True
    sts = sum(r["sts_refreshes_delta"] for r in lg)
    sts_total = lg[-1]["counters_after"]["sts_refreshes"]
    new_ngx = sum(r["new_stand_in_connections"] for r in lg)
    new_inv = sum(r["new_envoy_to_invoker_connections"] for r in lg)
    inv_total = lg[-1]["counters_after"]["envoy_to_invoker_cx_total"]
    reqs = sum(r["wrk"]["requests"] for r in lg)
    invocations = sum(r["invocations_delta"] for r in lg)
    cred = lg[-1]["counters_after"]["credential_fetches"]
    pool = lg[0]["counters_before"]["nginx_accepts"]
    # STS must not move at all (no STS call once warm). A pool of HTTP/1.1
    # connections (invoker -> stand-in, and Envoy -> invoker for the
    # callouts; the router path's HTTP/2 connection is one) may add a
    # connection when a request arrives just before another one's
    # connection is back in the pool, or when idle ones expired (hyper:
    # 90 s), but never more than the requests in flight: per run, at most
    # wrk's connection count.
    worst = max(lg, key=lambda r: r["new_stand_in_connections"] / r["connections"])
    pooled = all(r["new_stand_in_connections"] <= r["connections"] for r in lg)
    worst_inv = max(lg, key=lambda r: r["new_envoy_to_invoker_connections"] / r["connections"])
    pooled_inv = all(r["new_envoy_to_invoker_connections"] <= r["connections"] for r in lg)
    checks = [
        ("STS refreshes (invoker lambdagate_sts_refreshes_total)", sts, sts == 0, f"total since start {sts_total:.0f}"),
        (
            "new connections invoker -> stand-in (nginx stub_status accepts)",
            new_ngx,
            pooled,
            f"most in one run {worst['new_stand_in_connections']} ({worst['size']} {worst['kind']}, "
            f"{worst['connections']} in flight); allowed per run: up to the requests in flight",
        ),
        (
            "new connections Envoy -> invoker (upstream_cx_total of lambdagate_invoker and _http1)",
            new_inv,
            pooled_inv,
            f"most in one run {worst_inv['new_envoy_to_invoker_connections']}; total since start {inv_total}; "
            "allowed per run: up to the requests in flight",
        ),
    ]
    for name, delta, good, extra in checks:
        ok &= good
        lines.append(
            f"  {'ok  ' if good else 'FAIL'} {name}: +{delta:.0f} during {len(lg)} measured runs "
            f"({reqs} requests); {extra}"
        )
    lines.append(
        f"  info invoker invocations counted {invocations:.0f} for {reqs} requests wrk completed "
        f"(wrk drops in-flight ones at the end); credential fetches since start {cred:.0f}; "
        f"stand-in connections accepted before the first measured lambdagate run (all cases, warm-up included) {pool}"
    )
    return lines, ok


def comparison_lines(summary: dict) -> list[str]:
    """The lines before the last one: 1 MB against passthrough, the two
    data paths against each other, and CPU per request against native."""
    lines = []
    lg, pt = summary.get("lambdagate/1MB"), summary.get("native-passthrough/1MB")
    if lg and pt and pt["rps"] and pt["p99_ms"]:
        lines.append(
            f"1 MB: lambdagate/native-passthrough throughput={lg['rps'] / pt['rps']:.2f} p99={lg['p99_ms'] / pt['p99_ms']:.2f}"
        )
    for size in SIZES:
        d, o = summary.get(f"lambdagate/{size}"), summary.get(f"{OTHER_CASE}/{size}")
        if d and o and o["rps"] and o["p99_ms"] and o["cpu_s_per_10k"]:
            lines.append(
                f"{size}: {DEFAULT_PATH}/{OTHER_PATH} (lambdagate/{OTHER_CASE}) throughput={d['rps'] / o['rps']:.2f} "
                f"p99={d['p99_ms'] / o['p99_ms']:.2f} cpu/request={d['cpu_s_per_10k'] / o['cpu_s_per_10k']:.2f}"
            )
    for size in SIZES:
        for case, goal in (
            (AUTH_CASE, 0.95),
            (AUTH_NOCACHE_CASE, None),
            (JWT_CASE, 0.9),
            (KEYED_CASE, 0.95),
            (KEYED_REDIS_CASE, None),
            (KEYED_RLS_CASE, None),
            (RENDERED_CASE, None),
            (ACCESS_LOG_CASE, None),
            (UDS_CASE, None),
            (GRPC_CALLOUT_CASE, None),
        ):
            a, d = summary.get(f"{case}/{size}"), summary.get(f"lambdagate/{size}")
            if a and d and d["rps"] and d["p99_ms"] and d["cpu_s_per_10k"]:
                lines.append(
                    f"{size}: {case}/lambdagate throughput={a['rps'] / d['rps']:.2f} "
                    f"p99={a['p99_ms'] / d['p99_ms']:.2f} cpu/request={a['cpu_s_per_10k'] / d['cpu_s_per_10k']:.2f}"
                    + (
                        f" (goal: throughput >= {goal})"
                        if goal
                        else " (Redis store)"
                        if case == KEYED_REDIS_CASE
                        else " (Envoy's rate-limit filter: a second call)"
                        if case == KEYED_RLS_CASE
                        else " (render's access log, use_remote_address and headers)"
                        if case == RENDERED_CASE
                        else " (render's access log only)"
                        if case == ACCESS_LOG_CASE
                        else " (Envoy to the invoker over a unix socket)"
                        if case == UDS_CASE
                        else " (callout as gRPC, not HTTP/1.1)"
                        if case == GRPC_CALLOUT_CASE
                        else " (no cache: an extra hop per request)"
                    )
                )
    for size in SIZES:
        d, b = summary.get(f"lambdagate/{size}"), summary.get(f"{BASELINE_CASE}/{size}")
        if d and b and b["rps"] and b["p99_ms"] and b["cpu_s_per_10k"]:
            lines.append(
                f"{size}: this build/baseline (lambdagate/{BASELINE_CASE}) throughput={d['rps'] / b['rps']:.2f} "
                f"p99={d['p99_ms'] / b['p99_ms']:.2f} cpu/request={d['cpu_s_per_10k'] / b['cpu_s_per_10k']:.2f} "
                f"(Envoy {d['envoy_cpu_s_per_10k'] * 100:.0f} vs {b['envoy_cpu_s_per_10k'] * 100:.0f} us, "
                f"invoker {d['invoker_cpu_s_per_10k'] * 100:.0f} vs {b['invoker_cpu_s_per_10k'] * 100:.0f} us per request)"
            )
    lg, nat = summary.get("lambdagate/1KB"), summary.get("native/1KB")
    if lg and nat and nat["cpu_s_per_10k"]:
        lines.append(
            f"lambdagate/native cpu_per_request={lg['cpu_s_per_10k'] / nat['cpu_s_per_10k']:.2f} "
            f"(Envoy + invoker {lg['cpu_s_per_10k'] * 100:.0f} us, native Envoy {nat['cpu_s_per_10k'] * 100:.0f} us, 1 KB at saturation)"
        )
    return lines


def ratio_line(summary: dict) -> str:
    lg, nat = summary.get("lambdagate/1KB"), summary.get("native/1KB")
    if not lg or not nat or not nat["rps"] or not nat["p99_ms"]:
        return "lambdagate/native throughput=n/a p99=n/a"
    return f"lambdagate/native throughput={lg['rps'] / nat['rps']:.2f} p99={lg['p99_ms'] / nat['p99_ms']:.2f}"


def finish(args, argv: list[str], info: dict, load: Load, stream_cases: list[str], started: float) -> tuple[list[str], str, int]:
    """Once everything is measured: the summaries, the JSON file (`--out`)
    and the report. Returns the report's lines, the ratio line (printed last,
    after the clean-up) and the exit status: 0, or 2 when a check failed."""
    summary = summarize(load.runs, args.cases, args.sizes)
    stream_summary = summarize_stream(load.stream_runs)
    stream_failed = sum(s["failed"] for s in stream_summary.values())
    stream_ratio = stream_ratio_line(stream_summary)
    counter_lines, counters_ok = flat_counters(load)
    errors = sum(s["errors"] for s in summary.values())
    elapsed = time.monotonic() - started
    ratio = ratio_line(summary)
    extra = comparison_lines(summary)
    if stream_ratio:
        extra.append(stream_ratio)
    result = {
        "command": " ".join(["bench/run", *argv]),
        "settings": {
            "reps": args.reps,
            "duration_s": args.duration,
            "latency_duration_s": args.lat_duration,
            "warmup_s": args.warmup,
            "sizes": {s: SIZES[s] for s in args.sizes},
            "cases": {c: CASES[c] for c in args.cases},
            "envoy_concurrency": 1,
            "invoker_worker_threads": 1,
            "stream": {
                "fetches_per_case": args.stream_reps,
                "path": STREAM_PATH,
                "body_bytes": STREAM_BYTES,
                "chunks": STREAM_CHUNKS,
                "chunk_bytes": STREAM_CHUNK,
                "cases": list(stream_cases),
            },
        },
        "machine": info,
        "elapsed_s": round(elapsed, 1),
        "summary": summary,
        "flat_counters": {"ok": counters_ok, "lines": counter_lines},
        "errors": errors,
        "comparisons": extra,
        "ratio": ratio,
        "stream": {
            "summary": stream_summary,
            "failed": stream_failed,
            "ratio": stream_ratio,
            "runs": load.stream_runs,
        },
        "profiles": load.profiles,
        "runs": load.runs,
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
    report = [
        "",
        f"lambdagate bench: {args.reps} repetition(s) per figure (medians), saturation {args.duration:g} s, "
        f"latency {args.lat_duration:g} s at a fixed rate; Envoy --concurrency 1, invoker 1 worker; "
        f"{info['nproc']} CPUs; {elapsed:.0f} s",
        *legend(args),
        "",
        table(summary, args.sizes),
        "",
        "Counters that must stay flat under load (lambdagate case, measured runs after warm-up):",
        *counter_lines,
    ]
    if errors:
        report.append(f"  FAIL {errors} error responses or socket errors in measured runs (see {args.out})")
    stream_lines = stream_table(stream_summary, args.stream_reps)
    if stream_lines:
        report += ["", *stream_lines]
    if stream_failed:
        first = next(r for r in load.stream_runs if not r["ok"])
        report.append(
            f"  FAIL {stream_failed} of {len(load.stream_runs)} streams were not 200 with exactly "
            f"{STREAM_BYTES} bytes (first: {first['case']} status {first['status']}, {first['bytes']} bytes, "
            f"curl exit {first['curl_exit']}; see {args.out})"
        )
    busy = med([r["other_load_cores"] for r in load.runs])
    if busy is not None and busy > 0.25:
        report.append(
            f"NOTE: other processes used {busy:.2f} cores (median over the runs) of this machine's "
            f"{info['nproc']}: the figures are noisy; re-run on a quiet machine to compare"
        )
    report.append(f"raw numbers: {args.out}")
    report.extend(extra)
    code = 2 if not counters_ok or errors or stream_failed else 0
    return report, ratio, code
