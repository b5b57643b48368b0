"""Steady timings on a virtual machine: its memory costs about 2 s per GiB the first time it is touched.

Until every page has been touched once, a step that allocates fresh memory pays that cost and
another does not, so the same work varies 3x or more from run to run. `warm_memory` touches the
available memory once (in a child process, which gives it back) before a benchmark measures anything.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

TOUCH = """
import numpy as np
available = int([line for line in open('/proc/meminfo') if line.startswith('MemAvailable')][0].split()[1]) * 1024
chunks, total = [], 0
while total < available - {margin} * 2**30:
    chunks.append(np.ones(2**27))
    total += chunks[-1].nbytes
"""


def warm_memory(margin_gib: int = 3) -> None:
    """Touch all available memory but `margin_gib` GiB once, and give it back."""
    subprocess.run([sys.executable, "-c", TOUCH.format(margin=margin_gib)], check=True)


def best(function: Callable[[], object], repeat: int = 3, before: Callable[[], object] | None = None) -> float:
    """The shortest of `repeat` timed calls of `function`, in seconds; `before` runs untimed before each."""
    times = []
    for _ in range(repeat):
        if before is not None:
            before()
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def alternating(functions: dict[str, Callable[[], object]], repeat: int = 3, before: Callable[[], object] | None = None) -> dict[str, float]:
    """The shortest of `repeat` timed calls of each function, calling them in turn, in alternating order
    each round (what one pays for the state the machine is in, the other pays too); `before` runs untimed before each call."""
    times: dict[str, list[float]] = {name: [] for name in functions}
    for round_number in range(repeat):
        order = list(functions.items()) if round_number % 2 == 0 else list(functions.items())[::-1]
        for name, function in order:
            if before is not None:
                before()
            start = time.perf_counter()
            function()
            times[name].append(time.perf_counter() - start)
    return {name: min(values) for name, values in times.items()}


def child_env() -> dict[str, str]:
    """The environment of a measured child process, with Python's bytecode cache on as in an installed
    package: a shell that sets PYTHONDONTWRITEBYTECODE makes every process compile usidbridge again (about 0.1 s)."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def in_turn(ours: Callable[[], object], baseline: Callable[[], object], pairs: int) -> list[tuple[float, float]]:
    """(ours, baseline) seconds of `pairs` calls of each in turn, the order alternating from pair to
    pair, after one warm-up call of each: both meet the machine's swings alike, so the ratio of a
    pair cancels them out."""
    ours(), baseline()
    times = []
    for number in range(pairs):
        seconds = {}
        for function in (ours, baseline) if number % 2 == 0 else (baseline, ours):
            started = time.perf_counter()
            function()
            seconds[function] = time.perf_counter() - started
        times.append((seconds[ours], seconds[baseline]))
    return times


def ratio_row(times: list[tuple[float, float]]) -> str:
    """Markdown cells: ours and the baseline (median ms), the median of the per-pair ratios, and their quartiles."""
    ratios = sorted(mine / theirs for mine, theirs in times)
    low, _, high = statistics.quantiles(ratios, n=4)
    return f"{statistics.median(t[0] for t in times) * 1e3:.1f} | {statistics.median(t[1] for t in times) * 1e3:.1f} | {statistics.median(ratios):.2f} | {low:.2f}–{high:.2f}"
