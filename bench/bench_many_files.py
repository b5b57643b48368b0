"""Many small files: a beamtime folder of single-frame EDF and TIFF files (1 MiB each) to h5USID.

The floor is a plain loop, in as many processes as workers, that reads each frame with its library
(FabIO, tifffile) and writes the same h5USID content with numpy and h5py: the Main dataset and the
Position and Spectroscopic tables (USID's tables are part of the work; validation and the Python
machinery around it are not). Against it, in one run and in alternating order: ``ub.convert`` in a
loop in one process, and ``usidbridge batch`` with 1 and 2 workers (a fresh process, start-up
included). Figures are files per second, medians of the rounds, and the ratio to the floor of the
same number of processes. Outputs are deleted after each step, so the disk holds one run.

Run with ``make bench`` or ``python bench/bench_many_files.py --files 2000``.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from results import record  # noqa: E402

SHAPE = (512, 1024)  # uint16: 1 MiB


def make_files(folder: Path, count: int) -> dict[str, Path]:
    import fabio
    import tifffile

    rng = np.random.default_rng(0)
    frame = rng.integers(0, 60000, SHAPE).astype(np.uint16)
    folders = {"EDF": folder / "edf", "TIFF": folder / "tiff"}
    for path in folders.values():
        path.mkdir()
    for number in range(count):
        fabio.edfimage.EdfImage(data=frame).write(str(folders["EDF"] / f"frame_{number:05d}.edf"))
        tifffile.imwrite(folders["TIFF"] / f"frame_{number:05d}.tif", frame)
    return folders


def floor_one(job: tuple[str, str]) -> None:
    """Read one frame with its library; write Raw_Data and USID's four tables with h5py."""
    import h5py

    source, target = job
    if source.endswith(".edf"):
        import fabio

        data = fabio.open(source).data
    else:
        import tifffile

        data = tifffile.imread(source)
    rows, columns = data.shape
    y, x = np.meshgrid(np.arange(rows, dtype=np.uint32), np.arange(columns, dtype=np.uint32), indexing="ij")
    indices = np.stack([y.ravel(), x.ravel()], axis=1)
    with h5py.File(target, "w") as file:
        group = file.create_group("Measurement_000/Channel_000")
        group.create_dataset("Raw_Data", data=data.reshape(-1, 1))
        group.create_dataset("Position_Indices", data=indices)
        group.create_dataset("Position_Values", data=indices.astype(np.float32))
        group.create_dataset("Spectroscopic_Indices", data=np.zeros((1, 1), np.uint32))
        group.create_dataset("Spectroscopic_Values", data=np.zeros((1, 1), np.float32))


FLOOR_LOOP = """
import sys
from pathlib import Path
sys.path.insert(0, sys.argv[4])
from bench_many_files import floor_one
files, out, share, shares = sorted(Path(sys.argv[1]).iterdir()), Path(sys.argv[2]), *map(int, sys.argv[3].split("/"))
for path in files[share::shares]:
    floor_one((str(path), str(out / (path.stem + ".h5"))))
"""


def floor(folder: Path, out: Path, workers: int) -> float:
    """The plain loop in `workers` fresh processes, each taking every `workers`-th file (start-up
    included, as for ``batch``; fresh processes rather than a fork pool, whose single worker ran
    slower than the same loop in a plain process)."""
    started = time.perf_counter()
    loops = [subprocess.Popen([sys.executable, "-c", FLOOR_LOOP, str(folder), str(out), f"{share}/{workers}", str(HERE)]) for share in range(workers)]
    if any(loop.wait() for loop in loops):
        raise SystemExit("the floor loop failed")
    return len(list(folder.iterdir())) / (time.perf_counter() - started)


CONVERT_LOOP = """
import sys, time
from pathlib import Path
import usidbridge as ub
files, out = sorted(Path(sys.argv[1]).iterdir()), Path(sys.argv[2])
started = time.perf_counter()
for path in files:
    ub.convert(path, out / (path.stem + ".h5"))
print(len(files) / (time.perf_counter() - started))
"""


def convert_loop(folder: Path, out: Path) -> float:
    """``ub.convert`` file after file in one process (start-up not counted)."""
    result = subprocess.run([sys.executable, "-c", CONVERT_LOOP, str(folder), str(out)], capture_output=True, text=True, check=True)
    return float(result.stdout.strip())


def batch(folder: Path, out: Path, workers: int) -> float:
    """``usidbridge batch`` as a user runs it: a fresh process, start-up included."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "usidbridge", "batch", str(folder), "--to", "h5usid", "--out", str(out), "--workers", str(workers), "--quiet"], capture_output=True, check=True)
    return len(list(folder.iterdir())) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--record", action="store_true", help="write the table to bench/RESULTS.md")
    parser.add_argument("--dir", default=None, help="where the files are made (default: the system's temporary folder); /dev/shm takes the disk's writeback out of the figures")
    arguments = parser.parse_args()
    steps = {
        "floor, 1 process": lambda folder, out: floor(folder, out, 1),
        "floor, 2 processes": lambda folder, out: floor(folder, out, 2),
        "ub.convert in a loop": convert_loop,
        "batch --workers 1": lambda folder, out: batch(folder, out, 1),
        "batch --workers 2": lambda folder, out: batch(folder, out, 2),
    }
    rates: dict[tuple[str, str], list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="usidbridge-many-", dir=arguments.dir) as name:
        root = Path(name)
        folders = make_files(root, arguments.files)
        for round_number in range(arguments.rounds):
            order = list(steps) if round_number % 2 == 0 else list(reversed(steps))
            for kind, folder in folders.items():
                for step in order:
                    out = root / "out"
                    out.mkdir()
                    rates.setdefault((kind, step), []).append(steps[step](folder, out))
                    shutil.rmtree(out)
    where = f"in {arguments.dir}" if arguments.dir else "in the temporary folder, on disk"
    lines = [f"{arguments.files} single-frame files of 1 MiB ({SHAPE[0]} × {SHAPE[1]} uint16) per format, {where}, {arguments.rounds} rounds in alternating order; files/s (median, range) and the ratio to the floor of as many processes.", "",
             "| format | path | files/s | range | vs floor |", "|---|---|---|---|---|"]
    for (kind, step), values in rates.items():
        processes = 2 if "2" in step else 1
        floor_rate = statistics.median(rates[(kind, f"floor, {processes} process{'es' if processes == 2 else ''}")])
        median = statistics.median(values)
        lines.append(f"| {kind} | {step} | {median:.1f} | {min(values):.1f}–{max(values):.1f} | {median / floor_rate:.2f}× |")
    print("\n".join(lines))
    if arguments.record:
        record("Many small files (bench/bench_many_files.py)", "\n".join(lines))


if __name__ == "__main__":
    main()
