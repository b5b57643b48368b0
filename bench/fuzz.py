"""Fuzz every reader: mutants per format, outcomes per format, into bench/RESULTS.md.

    python bench/fuzz.py [--per-format 2000] [--timeout 30] [--start 0] [--formats F ...] [--seeds DIR ...] [--record]

Each crash or hang is run once more through `usidbridge.isolation.isolated` (what ``validate``,
``convert --isolate`` and ``batch`` do) and must come back as one clean error naming the file.
Uncaught mutants are listed with their (seed, mutation, number), which rebuilds them exactly.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

TESTS = str(Path(__file__).resolve().parents[1] / "tests")
sys.path.insert(0, TESTS)
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [TESTS, os.environ.get("PYTHONPATH")]))  # the isolated children import fuzzing too

from fuzzing import MODES, OUTCOMES, exercise, fuzz  # noqa: E402
from results import record  # noqa: E402

from usidbridge.errors import UsidBridgeError  # noqa: E402
from usidbridge.isolation import PROBE_TIMEOUT, isolated  # noqa: E402


def contained(path: Path, timeout: float) -> bool:
    """True when the mutant, read in isolation, ends in an answer or one usidbridge error naming it."""
    try:
        isolated(exercise, str(path), path=path, timeout=timeout)
    except UsidBridgeError as error:
        return str(path) in str(error)
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--per-format", type=int, default=2000)
    parser.add_argument("--timeout", type=float, default=PROBE_TIMEOUT + 10, help="seconds a read may take; longer than the structure probe's own timeout, which ends a hang in the probe child as a clean error")
    parser.add_argument("--start", type=int, default=0)
    parser.add_argument("--formats", nargs="*", default=(), help="only the seeds of these formats (nanonis, ntmdt, …)")
    parser.add_argument("--modes", nargs="*", default=MODES, choices=MODES, help="read each mutant lazily, eagerly, or both (default)")
    parser.add_argument("--seeds", nargs="*", type=Path, default=(), help="folders of more seed files (your instrument's), fuzzed as the format they are detected as")
    parser.add_argument("--record", action="store_true", help="write the table to bench/RESULTS.md")
    arguments = parser.parse_args()
    escaped, severe, isolated_ok = [], [], 0

    def on_result(seed, mutation, number, outcome, detail, path):
        nonlocal isolated_ok
        if outcome == "uncaught":
            escaped.append(f"{seed.path.name} {mutation} {number}: {detail}")
        elif outcome in ("hang", "crash"):
            severe.append(f"{seed.path.name} {mutation} {number}: {outcome} {detail}")
            isolated_ok += contained(path, arguments.timeout / 2)

    started = time.monotonic()
    table = fuzz(arguments.per_format, arguments.timeout, arguments.start, on_result, arguments.formats, arguments.modes, arguments.seeds)
    elapsed = time.monotonic() - started
    header = "| format, mode | reads | " + " | ".join(OUTCOMES) + " |"
    lines = [header, "|---" * (len(OUTCOMES) + 2) + "|"]
    for name, counts in sorted(table.items()):
        lines.append(f"| {name} | {sum(counts.values())} | " + " | ".join(str(counts[outcome]) for outcome in OUTCOMES) + " |")
    total = {outcome: sum(counts[outcome] for counts in table.values()) for outcome in OUTCOMES}
    lines.append(f"| **all** | {sum(total.values())} | " + " | ".join(str(total[outcome]) for outcome in OUTCOMES) + " |")
    summary = f"{sum(total.values())} reads ({arguments.per_format} mutants per format, each in {len(arguments.modes)} mode(s)) in {elapsed:.0f} s; crashes and hangs contained by isolation: {isolated_ok} of {len(severe)}"
    print("\n".join(lines))
    print(summary)
    for line in escaped[:80]:
        print("uncaught:", line)
    for line in severe:
        print("severe:", line)
    if arguments.record:
        record("Fuzzing (bench/fuzz.py)", "\n".join(lines) + f"\n\n{summary}. Mutations: truncation, bit flips, byte-range overwrite, zeroed tails, duplicated and deleted ranges, extreme integer fields, header-field lies and line shuffles (text formats), HDF5 deletions, retyped datasets, wrong and null references, soft/hard/external link cycles and external links to missing files, to the file itself and out of the folder, @default cycles, huge declared shapes, NaN/inf values, wrong attribute types, corrupted JSON attributes. Seeds: ../shared/data, fixtures/, files written by our writers, and instrument files built from their published layouts (Nanosurf, WSxM, MRC). Each mutant is read lazily and eagerly.")
    sys.exit(1 if escaped or isolated_ok < len(severe) else 0)


if __name__ == "__main__":
    main()
