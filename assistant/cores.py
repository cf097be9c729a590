"""How many threads a model may use: the cores free right now, for llama.cpp and ONNX Runtime alike."""

from __future__ import annotations

import os


def threads_for(cores: int, load: float) -> int:
    """Threads for `cores` cores with `load` of them busy (the 1-minute load average), at least 1.

    `(2, 1.1)` -> 1; `(2, 0.2)` -> 2; `(8, 3.0)` -> 5. Measured here with llama.cpp: 41 tokens/s on 1 thread, 3-5
    tokens/s on 2 threads with the other core busy: a thread that waits for a busy core stalls every other one.
    """
    return max(1, cores - round(load))


def free_cores() -> int:
    """Cores of this process's machine that are free right now (see `threads_for`)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return threads_for(cores, os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0)
