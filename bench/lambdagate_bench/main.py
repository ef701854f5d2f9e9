"""One run from start to end: set-up, start the stack, measure, report,
and, whatever happens, stop every process it started. Returns the exit
status: 0 all good, 1 set-up or start-up failure, 2 measured but a check
failed, 130 interrupted."""

from __future__ import annotations

import shutil
import signal
import tempfile
import time

from . import report
from .cases import Stack
from .common import Failure, log
from .load import Load
from .procs import Procs
from .prepare import copy_for_measuring, machine_info, setup


def _on_signal(signum, _frame):
    raise KeyboardInterrupt(f"signal {signum}")


def main(args, argv: list[str]) -> int:
    """`args` from bench/run's parser; `argv` as given (recorded in the JSON)."""
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGHUP, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    started = time.monotonic()
    workdir = tempfile.mkdtemp(prefix="lambdagate-bench-")
    procs = Procs(workdir)
    keep = args.keep
    code = 0
    lines: list[str] = []
    ratio = None
    try:
        tools = setup(args)
        copy_for_measuring(tools, workdir)
        info = machine_info(tools)
        stack = Stack(args, tools, workdir, procs)
        load = Load(args, stack)
        log(f"scratch folder {workdir}")
        stack.start()
        load.measure()
        load.measure_stream()
        lines, ratio, code = report.finish(args, argv, info, load, stack.stream_cases(), started)
    except Failure as e:
        log(f"FAILED: {e}")
        keep = True
        code = 1
    except KeyboardInterrupt:
        log("interrupted; stopping everything")
        keep = True
        code = 130
    finally:
        procs.stop_all()
        if keep:
            log(f"configs and logs kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    # After the clean-up, so that the ratio line really is the last line.
    if ratio is not None:
        print("\n".join(lines), flush=True)
        print(ratio, flush=True)
    return code
