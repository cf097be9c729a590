"""Threads for the models: the cores free right now."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from assistant.cores import _running, busy_cores, free_cores, threads_for


@pytest.mark.parametrize(("cores", "load", "threads"), [(2, 1.1, 1), (2, 0.2, 2), (2, 2.9, 1), (8, 3.0, 5), (1, 0, 1)])
def test_threads_are_the_free_cores(cores, load, threads):
    assert threads_for(cores, load) == threads


def test_free_cores_is_at_least_one_and_at_most_the_cores():
    assert 1 <= free_cores() <= (os.cpu_count() or 1)


@pytest.mark.parametrize(
    ("minute_load", "running", "busy"),
    [(1.2, 1, 0), (1.2, 3, 1.2), (0.3, 4, 0.3), (2.0, None, 2.0), (0.0, 1, 0)],
)
def test_busy_cores_are_busy_both_over_the_last_minute_and_now(minute_load, running, busy):
    assert busy_cores(minute_load, running) == busy


def test_a_just_finished_run_leaves_both_cores_to_the_next_question():
    # Two cores, the 1-minute average still at 1.1 from an `ask` that just ended, only this process running.
    assert threads_for(2, busy_cores(1.1, 1)) == 2


@pytest.mark.skipif(not Path("/proc/loadavg").exists(), reason="Linux only")
def test_the_running_count_includes_this_process():
    assert _running() >= 1
