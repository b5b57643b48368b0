"""USID's ancillary tables: writing an image's Position tables against h5py writing two ready arrays.

A 1024 × 1024 image has 1,048,576 positions; its Position_Indices (uint32) and Position_Values
(float32 where lossless) hold 16 bytes per pixel. Ours builds them from the two dims and writes
them (`usidbridge.converters.h5usid._write_ancillary`, as every h5USID write does); the baseline is
h5py writing two arrays of the same shapes and dtypes that are already in memory. Both write into
a new file each time; pairs are called in turn, and the figure is the median of the per-pair ratios.

Run with ``python bench/bench_tables.py --record``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from machine import in_turn, ratio_row  # noqa: E402
from results import record  # noqa: E402


def main() -> None:
    import usidbridge as ub
    from usidbridge.converters.h5usid import _write_ancillary

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--side", type=int, default=1024)
    parser.add_argument("--pairs", type=int, default=30)
    parser.add_argument("--dir", default="/dev/shm")
    parser.add_argument("--record", action="store_true")
    arguments = parser.parse_args()
    side = arguments.side
    positions = ub.Ancillary([ub.Dimension("Y", "m", np.arange(side) * 1e-9), ub.Dimension("X", "m", np.arange(side) * 1e-9)])
    indices, values = positions.rows(0, positions.size, positions.values_dtype)

    with tempfile.TemporaryDirectory(dir=arguments.dir) as name:
        path = Path(name) / "tables.h5"  # removed after each call: on tmpfs, rewriting one file would reuse its pages

        def ours() -> None:
            with h5py.File(path, "w") as file:
                _write_ancillary(file, "Position", positions)
            path.unlink()

        def baseline() -> None:
            with h5py.File(path, "w") as file:
                file.create_dataset("Position_Indices", data=indices)
                file.create_dataset("Position_Values", data=values)
            path.unlink()

        times = in_turn(ours, baseline, arguments.pairs)
    lines = [f"Measured by `bench/bench_tables.py` on {time.strftime('%Y-%m-%d')}: the Position tables of a {side} × {side} image ({indices.dtype} indices, {values.dtype} values, {(indices.nbytes + values.nbytes) / 2**20:.0f} MiB in all), {arguments.pairs} pairs in turn, new files in {arguments.dir}.", "",
             "| work | ours, median (ms) | baseline, median (ms) | ratio: median | quartiles |", "|---|---|---|---|---|",
             f"| usidbridge building the tables from the dims and writing them, against h5py writing the two arrays already in memory | {ratio_row(times)} |"]
    print("\n".join(lines))
    if arguments.record:
        record("Ancillary tables (bench/bench_tables.py)", "\n".join(lines))


if __name__ == "__main__":
    main()
