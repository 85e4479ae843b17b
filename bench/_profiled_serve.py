"""Run the ``ticketbot`` CLI under cProfile with a CPU-time clock: ``python -m bench._profiled_serve
OUT.pstats serve ...``. A CPU clock, not cProfile's default wall clock: on a busy machine the wall
clock charges the time the process waits for a core to whatever function happens to be running."""

from __future__ import annotations

import cProfile
import runpy
import sys
import time


def main() -> None:
    if len(sys.argv) < 3:
        sys.exit("usage: python -m bench._profiled_serve OUT.pstats serve [options]")
    out = sys.argv[1]
    sys.argv = ["ticketbot", *sys.argv[2:]]
    profiler = cProfile.Profile(time.process_time)
    code = 0
    try:
        profiler.runcall(runpy.run_module, "bot", run_name="__main__", alter_sys=True)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    finally:
        profiler.dump_stats(out)
    sys.exit(code)


if __name__ == "__main__":
    main()
