"""Tiny timing helpers shared by the benchmark sections."""

from __future__ import annotations

import gc
import os
import statistics
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Row:
    """One measured line of a section's table."""

    subject: str
    value: float
    unit: str
    note: str = ""


@dataclass(frozen=True)
class Section:
    title: str
    explanation: str
    rows: list[Row]
    verdicts: list[str]


def best_seconds(work: Callable[[], object], *, repeat: int = 7, number: int = 1) -> float:
    """The fastest of ``repeat`` runs of ``number`` calls: the least disturbed measurement.

    Like ``timeit``, the garbage collector is paused while timing, for every subject alike.
    """
    times = []
    gc.collect()
    gc.disable()
    try:
        for _ in range(repeat):
            start = time.perf_counter()
            for _ in range(number):
                work()
            times.append((time.perf_counter() - start) / number)
    finally:
        gc.enable()
    return min(times)


def median_process_seconds(argv: Sequence[str], *, runs: int = 30, stdin: str = "") -> float:
    """Median wall time of starting ``argv`` as a new process and waiting for it."""
    subprocess.run(argv, input=stdin, capture_output=True, text=True, check=True)  # warm caches
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, input=stdin, capture_output=True, text=True, check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def verdict(name: str, measured: float, target: float, *, higher_is_better: bool = True) -> str:
    ok = measured >= target if higher_is_better else measured <= target
    sign = ">=" if higher_is_better else "<="
    return f"{'met' if ok else 'MISSED'}: {name} {measured:.2f} (target {sign} {target:g})"


def settle_disk() -> None:
    """Write out what earlier work left in the page cache before a timed run that commits
    (synchronous=FULL), so that the run's fsyncs do not wait on it: a vault built just before,
    or the last section's files. (The CLI export took 2.06 s in a whole bench run and 1.33 s
    in a run of its own section, on the same quiet machine.)"""
    os.sync()
