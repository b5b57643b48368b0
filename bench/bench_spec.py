"""SPEC parsing against silx's C parser (SpecFile) and numpy.loadtxt, on the same files in the same run.

Run with `python bench/bench_spec.py [--scans 200 --rows 1000 --columns 20] [--rounds 5] [--record]`.
Two files: counters only (scans x rows x columns), and MCA (one 1024-channel spectrum per point,
written as SPEC writes it: 16 values per line with ``\\`` continuations). Each reader runs in this
process, best of `rounds` + 1 runs.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from machine import best  # noqa: E402
from results import record  # noqa: E402


def write_counters(path: Path, scans: int, rows: int, columns: int) -> None:
    rng = np.random.default_rng(0)
    labels = "  ".join(["Theta"] + [f"counter{index}" for index in range(1, columns)])
    with open(path, "w") as handle:
        handle.write("#F bench.spec\n#E 1700000000\n#D Mon Nov 30 00:00:00 2026\n\n")
        for number in range(1, scans + 1):
            handle.write(f"#S {number} ascan  Theta 0 10 {rows - 1} 1\n#D Mon Nov 30 00:00:00 2026\n#N {columns}\n#L {labels}\n")
            block = rng.random((rows, columns)) * 1000
            block[:, 0] = np.linspace(0, 10, rows)
            np.savetxt(handle, block, fmt="%.6g")
            handle.write("\n")


def write_mca(path: Path, scans: int, rows: int, channels: int = 1024) -> None:
    rng = np.random.default_rng(1)
    with open(path, "w") as handle:
        handle.write("#F mca.spec\n#E 1700000000\n\n")
        for number in range(1, scans + 1):
            handle.write(f"#S {number} ascan  Theta 0 10 {rows - 1} 1\n#N 2\n#@MCA 16C\n#@CHANN {channels} 0 {channels - 1} 1\n#L Theta  Monitor\n")
            for row in range(rows):
                spectrum = rng.integers(0, 1000, channels)
                lines = [" ".join(str(value) for value in spectrum[start : start + 16]) for start in range(0, channels, 16)]
                handle.write("@A " + " \\\n".join(lines) + "\n")
                handle.write(f"{row * 0.1:g} 100000\n")
            handle.write("\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scans", type=int, default=200)
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--columns", type=int, default=20)
    parser.add_argument("--mca-scans", type=int, default=20)
    parser.add_argument("--mca-rows", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--record", action="store_true")
    arguments = parser.parse_args()
    from silx.io.specfile import SpecFile

    import usidbridge as ub

    with tempfile.TemporaryDirectory() as folder_name:
        counters, mca = Path(folder_name) / "counters.spec", Path(folder_name) / "mca.spec"
        write_counters(counters, arguments.scans, arguments.rows, arguments.columns)
        write_mca(mca, arguments.mca_scans, arguments.mca_rows)

        def silx_counters():
            spec = SpecFile(str(counters))
            data = [scan.data for scan in spec]
            spec.close()
            return data

        def loadtxt_counters():
            return np.loadtxt(counters, comments="#", ndmin=2)

        def silx_mca():
            spec = SpecFile(str(mca))
            data = [(scan.data, [scan.mca[index] for index in range(len(scan.mca))]) for scan in spec]
            spec.close()
            return data

        silx_seconds = best(silx_counters, arguments.rounds + 1)
        figures = [
            ("counters", "usidbridge", best(lambda: ub.read(counters), arguments.rounds + 1), silx_seconds),
            ("counters", "numpy.loadtxt (data lines only)", best(loadtxt_counters, arguments.rounds + 1), silx_seconds),
            ("counters", "silx SpecFile", silx_seconds, silx_seconds),
        ]
        silx_mca_seconds = best(silx_mca, arguments.rounds + 1)
        figures += [
            ("MCA", "usidbridge", best(lambda: ub.read(mca), arguments.rounds + 1), silx_mca_seconds),
            ("MCA", "silx SpecFile", silx_mca_seconds, silx_mca_seconds),
        ]
        size = {"counters": counters.stat().st_size / 2**20, "MCA": mca.stat().st_size / 2**20}
    rows = [
        f"Measured by `bench/bench_spec.py` on {time.strftime('%Y-%m-%d')}: counters: {arguments.scans} scans x {arguments.rows} points x {arguments.columns} columns; "
        f"MCA: {arguments.mca_scans} scans x {arguments.mca_rows} points x 1024 channels; best of {arguments.rounds + 1} runs.",
        "",
        "| file | reader | seconds | × silx | MiB/s |",
        "|---|---|---|---|---|",
    ]
    rows += [f"| {kind} ({size[kind]:.0f} MiB) | {reader} | {seconds:.3f} | {seconds / baseline:.2f} | {size[kind] / seconds:.0f} |" for kind, reader, seconds, baseline in figures]
    table = "\n".join(rows)
    print(table)
    if arguments.record:
        record("SPEC parsing (bench/bench_spec.py)", table)


if __name__ == "__main__":
    main()
