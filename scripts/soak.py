"""Soak test driver: see scripts/soak for how to run it.

Writes an API definition for the Rust sample function (access method
`local`, so the invoker runs it) on free loopback ports, deploys it as a
user would (`lambdagate render`), starts the rendered invoker and Envoy
with the compiled filter, drives a fixed request rate with `hey`, samples
RSS every few seconds, and writes a CSV and a PNG.
Exit status 1 if any request failed or got no answer.
"""

import argparse
import csv
import datetime
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
WASM = os.path.join(ROOT, "target/wasm32-wasip1/wasm/lambdagate_filter.wasm")
ENVOY = os.path.join(ROOT, ".venv/bin/envoy")
ARN = "arn:aws:lambda:us-east-1:000000000000:function:hello-rust"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def binaries():
    for profile in ("release", "debug"):
        d = os.path.join(ROOT, "target", profile)
        bins = (os.path.join(d, "lambdagate"), os.path.join(d, "hello-rust"))
        if all(os.access(b, os.X_OK) for b in bins):
            return profile, bins
    sys.exit("no lambdagate + hello-rust binaries in target/release or target/debug: "
             "run `cargo build --release -p lambdagate-invoker -p hello-rust`")


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        return None
    return 0


def children(pid):
    """Direct children of pid (the invoker's function processes)."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except FileNotFoundError:
        return []


def api_definition(hello, max_concurrency, listen, admin, invoker, invoker_admin):
    """The soak's API: GET /fn/hello/{name} -> the Rust sample, run locally."""
    q = json.dumps  # a JSON string is a YAML double-quoted scalar
    return f"""\
# scripts/soak: the Rust sample function behind Envoy, run by the invoker.
name: soak
version: v1
context: /fn
endpoint:
  name: local
  access_method: local
  region: us-east-1
  functions:
    - name: hello-rust
      command: [{q(hello)}]
      max_concurrency: {max_concurrency}
resources:
  - verb: GET
    uri_template: /hello/{{name}}
    arn: {ARN}
    timeout_seconds: 10
gateway:
  listen: 127.0.0.1:{listen}
  admin: 127.0.0.1:{admin}
  invoker: 127.0.0.1:{invoker}
  invoker_admin: 127.0.0.1:{invoker_admin}
  portal: {{enabled: false}}
"""


def wait_ok(url, within=30):
    deadline = time.time() + within
    last = None
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                if r.status == 200:
                    return
        except Exception as e:  # noqa: BLE001 - any failure means "not yet"
            last = e
        time.sleep(0.2)
    sys.exit(f"{url} did not answer 200 within {within}s: {last}")


def parse_hey(text):
    """Exact counts from hey's summary: statuses and transport errors."""
    statuses = {int(s): int(n) for s, n in re.findall(r"\[(\d+)\]\s+(\d+) responses", text)}
    errors = 0
    if "Error distribution:" in text:
        tail = text.split("Error distribution:", 1)[1]
        errors = sum(int(n) for n in re.findall(r"^\s*\[(\d+)\]", tail, re.M))
    latency = {}
    for label in ("Average", "Slowest"):
        m = re.search(rf"{label}:\s+([\d.]+) secs", text)
        if m:
            latency[label.lower()] = float(m.group(1))
    for pct in ("50%", "99%"):
        m = re.search(rf"{re.escape(pct)} in ([\d.]+) secs", text)
        if m:
            latency["p" + pct.rstrip("%")] = float(m.group(1))
    return statuses, errors, latency


def plot(rows, png, title):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    minutes = [r["elapsed_s"] / 60 for r in rows]
    fig, ax = plt.subplots(figsize=(9, 4.5), dpi=100)
    for key, label in (("envoy_rss_kib", "Envoy"), ("invoker_rss_kib", "invoker"),
                       ("functions_rss_kib", "function processes")):
        ax.plot(minutes, [r[key] / 1024 for r in rows], label=label)
    ax.set_xlabel("minutes")
    ax.set_ylabel("RSS (MiB)")
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    ax.legend()
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(png)


def main():
    p = argparse.ArgumentParser(description="lambdagate soak test (see scripts/soak)")
    p.add_argument("--minutes", type=float, default=20)
    p.add_argument("--rate", type=int, default=400, help="requests per second in total")
    p.add_argument("--workers", type=int, default=10,
                   help="hey workers (connections); also the function's max_concurrency, "
                        "so no request is throttled (at most one in flight per worker)")
    p.add_argument("--interval", type=float, default=5, help="seconds between RSS samples")
    p.add_argument("--csv", default="docs/soak-rss.csv")
    p.add_argument("--png", default="docs/soak-rss.png")
    args = p.parse_args()
    if args.rate % args.workers:
        sys.exit("--rate must be a multiple of --workers (hey rate-limits per worker)")
    for path, what in ((WASM, "the filter (cargo build -p lambdagate-filter --target wasm32-wasip1 --profile wasm)"),
                       (ENVOY, "Envoy in .venv (scripts/setup)")):
        if not os.path.exists(path):
            sys.exit(f"missing {path}: build/install {what}")
    if subprocess.run(["sh", "-c", "command -v hey"], capture_output=True).returncode:
        sys.exit("hey is not installed: run scripts/setup")
    profile, (lambdagate, hello) = binaries()

    work = tempfile.mkdtemp(prefix="lambdagate-soak-")
    listen, admin, inv, inv_admin = (free_port() for _ in range(4))
    api_yaml = os.path.join(work, "api.yaml")
    with open(api_yaml, "w") as f:
        f.write(api_definition(hello, args.workers, listen, admin, inv, inv_admin))
    stack = os.path.join(work, "stack")
    rendered = subprocess.run([lambdagate, "render", api_yaml, "--out", stack, "--filter", WASM],
                              capture_output=True, text=True)
    if rendered.returncode:
        sys.exit(f"lambdagate render failed (exit {rendered.returncode}):\n{rendered.stderr}")

    logs = open(os.path.join(work, "processes.log"), "w")
    env = {"PATH": os.environ.get("PATH", ""), "HOME": work, "LAMBDAGATE_LOG": "warn"}
    invoker = subprocess.Popen([lambdagate, "serve", "--config", os.path.join(stack, "invoker.yaml")],
                               env=env, stdout=logs, stderr=logs)
    envoy = subprocess.Popen([ENVOY, "-c", os.path.join(stack, "envoy.yaml"), "--concurrency", "1",
                              "--disable-hot-restart", "--log-level", "warn"], stdout=logs, stderr=logs)
    procs = [invoker, envoy]
    try:
        url = f"http://127.0.0.1:{listen}/fn/hello/soak"
        wait_ok(url)
        seconds = int(args.minutes * 60)
        print(f"soak: {args.minutes} min at {args.rate} req/s ({args.workers} workers), "
              f"{profile} binaries, Envoy pid {envoy.pid}, invoker pid {invoker.pid}; work dir {work}",
              flush=True)
        hey_out = open(os.path.join(work, "hey.txt"), "w+")
        hey = subprocess.Popen(["hey", "-z", f"{seconds}s", "-c", str(args.workers),
                                "-q", str(args.rate // args.workers), "-t", "15", url],
                               stdout=hey_out, stderr=subprocess.STDOUT)
        started = time.time()
        rows = []
        while True:
            fn_rss = sum(rss_kib(c) or 0 for c in children(invoker.pid))
            row = {"elapsed_s": round(time.time() - started, 1),
                   "envoy_rss_kib": rss_kib(envoy.pid) or 0,
                   "invoker_rss_kib": rss_kib(invoker.pid) or 0,
                   "functions_rss_kib": fn_rss}
            rows.append(row)
            if hey.poll() is not None:
                break
            if envoy.poll() is not None or invoker.poll() is not None:
                hey.terminate()
                sys.exit(f"a process died during the soak; logs in {work}")
            time.sleep(args.interval)
        hey_out.seek(0)
        hey_text = hey_out.read()
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()

    statuses, errors, latency = parse_hey(hey_text)
    sent = sum(statuses.values()) + errors
    ok = statuses.get(200, 0)
    os.makedirs(os.path.dirname(os.path.join(ROOT, args.csv)) or ".", exist_ok=True)
    with open(os.path.join(ROOT, args.csv), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
        w.writeheader()
        w.writerows(rows)
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    title = (f"lambdagate soak {when}: {args.minutes:g} min at {args.rate} req/s, {profile} build; "
             f"{sent} requests, {ok} ok, {sent - ok} failed/lost")
    plot(rows, os.path.join(ROOT, args.png), title)

    def growth(key):
        first, last = rows[0][key], rows[-1][key]
        peak = max(r[key] for r in rows)
        return f"{first / 1024:.1f} -> {last / 1024:.1f} MiB (peak {peak / 1024:.1f})"

    print(f"requests: {sent}, 200: {ok}, other statuses: "
          f"{ {s: n for s, n in statuses.items() if s != 200} }, no answer/errors: {errors}")
    print(f"latency (s): {latency}")
    print(f"RSS Envoy {growth('envoy_rss_kib')}; invoker {growth('invoker_rss_kib')}; "
          f"functions {growth('functions_rss_kib')}")
    print(f"wrote {args.csv} ({len(rows)} samples) and {args.png}")
    if sent == 0 or ok != sent:
        print(f"FAILED: {sent - ok} of {sent} requests not answered 200; hey output in {work}/hey.txt")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
