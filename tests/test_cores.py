"""Threads for the models: the cores free right now."""

from __future__ import annotations

import os

import pytest

from assistant.cores import free_cores, threads_for


@pytest.mark.parametrize(("cores", "load", "threads"), [(2, 1.1, 1), (2, 0.2, 2), (2, 2.9, 1), (8, 3.0, 5), (1, 0, 1)])
def test_threads_are_the_free_cores(cores, load, threads):
    assert threads_for(cores, load) == threads


def test_free_cores_is_at_least_one_and_at_most_the_cores():
    assert 1 <= free_cores() <= (os.cpu_count() or 1)
