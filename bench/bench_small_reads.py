"""Small reads: the fixed cost of one ``ub.read(...) + to_ndarray()`` on files of 16 and 64 MiB.

For each file, ours and its raw baseline are called in turn in one process, many times; the figure
is the median of the per-pair ratios (ours / raw), which the machine's swings cancel out of. The
first call of each pair order is a warm-up. Baselines read the same bytes with no USID:

- EDF and TIFF stacks: ``readinto`` at each frame's offset into one preallocated array;
- h5USID: h5py reading the Main dataset and reshaping it to N-D;
- xarray ``open_dataset(path, engine="usid").load()``: the same h5py read.

h5USID has a second baseline, the least any reader of it does through h5py: the Main dataset read
whole, and what USID requires beside it, read with no checks (every attribute of the Main dataset,
its group, the group above and the file; the four references followed; the labels, units and the
four ancillary tables). It is what USID's metadata costs through h5py's per-object calls (about
30 us per attribute), which no reader built on h5py avoids.

The structure probe (`usidbridge.isolation`) is on, as for a user: its child is started by the
warm-up, and each read of an HDF5 file walks that file's structure there first, unless the same
unchanged file was walked before in this process.

Run with ``python bench/bench_small_reads.py --record``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from machine import in_turn, ratio_row  # noqa: E402
from results import record  # noqa: E402

FRAME = (256, 256)  # float32 frames of 256 KiB


def make(folder: Path, mebibytes: int) -> dict[str, Path]:
    import fabio
    import tifffile

    import usidbridge as ub

    frames = mebibytes * 4
    stack = np.random.default_rng(0).random((frames, *FRAME), dtype=np.float32)
    paths = {kind: folder / f"{mebibytes}.{kind}" for kind in ("edf", "tif", "h5")}
    edf = fabio.edfimage.EdfImage(data=stack[0])
    for frame in stack[1:]:
        edf.append_frame(data=frame)
    edf.write(str(paths["edf"]))
    tifffile.imwrite(paths["tif"], stack)
    cube = ub.Dataset.from_ndarray(stack.reshape(frames, -1).T.reshape(*FRAME, frames), [ub.Dimension("Y", "m", FRAME[0]), ub.Dimension("X", "m", FRAME[1])], [ub.Dimension("Frame", "", frames)], quantity="Intensity", units="counts")
    ub.write(cube, paths["h5"])
    return paths


def tiff_offsets(path: Path) -> list[int]:
    """Where each TIFF frame's bytes start, from tifffile (the baseline's only lookup)."""
    import tifffile

    with tifffile.TiffFile(path) as tif:
        return [page.dataoffsets[0] for page in tif.pages]


def edf_offsets(path: Path, frames: int) -> list[int]:
    """Where each EDF frame's bytes start: after its header, which ends at the first '}' and a newline."""
    data, offsets, position = path.read_bytes(), [], 0
    frame_bytes = FRAME[0] * FRAME[1] * 4
    for _ in range(frames):
        end = data.index(b"}\n", position) + 2
        offsets.append(end)
        position = end + frame_bytes
    return offsets


def raw_frames(path: Path, offsets: list[int], frames: int) -> Callable[[], np.ndarray]:
    frame_bytes = FRAME[0] * FRAME[1] * 4

    def read() -> np.ndarray:
        array = np.empty((frames, *FRAME), np.float32)
        view = memoryview(array).cast("B")
        with open(path, "rb", buffering=0) as handle:
            for number, offset in enumerate(offsets):
                handle.seek(offset)
                handle.readinto(view[number * frame_bytes : (number + 1) * frame_bytes])
        return array

    return read


def raw_main(path: Path) -> Callable[[], np.ndarray]:
    import h5py

    def read() -> np.ndarray:
        with h5py.File(path, "r") as file:
            return file["Measurement_000/Channel_000/Raw_Data"][()].reshape(*FRAME, -1)

    return read


def usid_floor(path: Path) -> Callable[[], np.ndarray]:
    import h5py

    def everything(obj: h5py.HLObject) -> dict:
        attributes = obj.attrs
        return {name: attributes[name] for name in attributes}

    def read() -> np.ndarray:
        with h5py.File(path, "r") as file:
            main = file["Measurement_000/Channel_000/Raw_Data"]
            found = everything(main)
            for name in ("Position_Indices", "Position_Values", "Spectroscopic_Indices", "Spectroscopic_Values"):
                table = file[found[name]]
                table.attrs["labels"], table.attrs["units"], table[()]
            channel = main.parent
            everything(channel), everything(channel.parent), everything(file)
            return main[()].reshape(*FRAME, -1)

    return read


def steps(paths: dict[str, Path], frames: int) -> dict[str, tuple[Callable[[], object], Callable[[], object]]]:
    import xarray

    import usidbridge as ub

    return {
        "EDF stack: ub.read + to_ndarray": (lambda: ub.read(paths["edf"])[0].to_ndarray(), raw_frames(paths["edf"], edf_offsets(paths["edf"], frames), frames)),
        "TIFF stack: ub.read + to_ndarray": (lambda: ub.read(paths["tif"])[0].to_ndarray(), raw_frames(paths["tif"], tiff_offsets(paths["tif"]), frames)),
        "h5USID: ub.read + to_ndarray": (lambda: ub.read(paths["h5"])[0].to_ndarray(), raw_main(paths["h5"])),
        "h5USID: xarray engine=usid .load()": (lambda: xarray.open_dataset(paths["h5"], engine="usid").load(), raw_main(paths["h5"])),
        "h5USID: ub.read + to_ndarray, against the h5py floor": (lambda: ub.read(paths["h5"])[0].to_ndarray(), usid_floor(paths["h5"])),
        "h5USID: xarray engine=usid .load(), against the h5py floor": (lambda: xarray.open_dataset(paths["h5"], engine="usid").load(), usid_floor(paths["h5"])),
        "h5USID: the h5py floor, against the raw read": (usid_floor(paths["h5"]), raw_main(paths["h5"])),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=30, help="calls of ours and the baseline, in turn, per step")
    parser.add_argument("--dir", default="/dev/shm", help="where the files are made")
    parser.add_argument("--record", action="store_true", help="write the table to bench/RESULTS.md")
    arguments = parser.parse_args()
    lines = [f"Measured by `bench/bench_small_reads.py` on {time.strftime('%Y-%m-%d')}, in one process, files in {arguments.dir}: per step {arguments.pairs} calls of ours and of its baseline in turn (after one warm-up call of each), the ratio of each pair, median and quartiles. The structure probe is on, as for a user.", "",
             "| size | work | ours, median (ms) | baseline, median (ms) | ratio: median | quartiles |", "|---|---|---|---|---|---|"]
    with tempfile.TemporaryDirectory(prefix="usidbridge-small-", dir=arguments.dir) as name:
        for mebibytes in (16, 64):
            paths = make(Path(name), mebibytes)
            for work, (ours, raw) in steps(paths, mebibytes * 4).items():
                lines.append(f"| {mebibytes} MiB | {work} | {ratio_row(in_turn(ours, raw, arguments.pairs))} |")
                print(lines[-1], flush=True)
    if arguments.record:
        record("Small reads (bench/bench_small_reads.py)", "\n".join(lines))


if __name__ == "__main__":
    main()
