"""How many threads a model may use: the cores free right now, for llama.cpp and ONNX Runtime alike."""

from __future__ import annotations

import os
from pathlib import Path

LOADAVG = Path("/proc/loadavg")


def threads_for(cores: int, load: float) -> int:
    """Threads for `cores` cores with `load` of them busy (the 1-minute load average), at least 1.

    `(2, 1.1)` -> 1; `(2, 0.2)` -> 2; `(8, 3.0)` -> 5. Measured here with llama.cpp: 41 tokens/s on 1 thread, 3-5
    tokens/s on 2 threads with the other core busy: a thread that waits for a busy core stalls every other one.
    """
    return max(1, cores - round(load))


def busy_cores(minute_load: float, running: int | None) -> float:
    """Cores busy now: the 1-minute load average, capped by the tasks running this instant besides this one.

    The average trails by a minute: the `ask` run just before this one, or an index run that just ended, still
    counts as a busy core though the machine is idle, and halved the threads a question got (0.34 s instead of
    0.18 s for 40 units). A task busy now is in both counts, so the smaller one is not fooled by what has ended.
    `busy_cores(1.2, 1)` -> 0 (only this process runs); `busy_cores(1.2, 3)` -> 1.2; without the count (not
    Linux), the average.
    """
    if running is None:
        return minute_load
    return min(minute_load, max(0, running - 1))


def _running() -> int | None:
    """Tasks running or ready to run right now, this one included (`/proc/loadavg`'s "2/180"), None elsewhere."""
    try:
        return int(LOADAVG.read_text().split()[3].split("/")[0])
    except (OSError, IndexError, ValueError):
        return None


def free_cores() -> int:
    """Cores of this process's machine that are free right now (see `threads_for`, `busy_cores`)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    minute_load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    return threads_for(cores, busy_cores(minute_load, _running()))
