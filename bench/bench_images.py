"""Image stacks: a large multi-frame EDF and TIFF converted lazily to h5USID, against the peers.

Run with `make bench`. Peak memory is read in child processes (VmHWM), so the figures show
whether memory follows the file (a full read) or stays bounded (memory maps, blockwise copy).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from machine import child_env, warm_memory  # noqa: E402
from results import record  # noqa: E402

SAMPLER = """
import threading, time
peak_anon = [0]
def _sample():
    while True:
        for line in open('/proc/self/status'):
            if line.startswith('RssAnon'):
                peak_anon[0] = max(peak_anon[0], int(line.split()[1]))
        time.sleep(0.005)
threading.Thread(target=_sample, daemon=True).start()
"""
REPORT = "\nprint(peak_anon[0], [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1])"


def measure(code: str) -> tuple[float, float, float]:
    """(seconds, peak anonymous MiB, peak resident MiB) of a child Python process running `code`.

    Resident memory also counts the pages of memory-mapped files, which the kernel can drop at
    will; anonymous memory (sampled every 5 ms) is what the process really allocated.
    """
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", SAMPLER + code + REPORT], capture_output=True, text=True, env=child_env())
    if result.returncode:
        raise RuntimeError(f"benchmark step failed:\n{code}\n{result.stderr}")
    anon, resident = (int(value) / 1024 for value in result.stdout.strip().splitlines()[-1].split())
    return time.perf_counter() - start, anon, resident


RAW_READINTO = """
offsets, frame_bytes = {offsets}, {frame_bytes}
array = np.empty(({frames}, {height}, {width}), np.float32)
view = memoryview(array).cast("B")
with open({path!r}, "rb", buffering=0) as handle:
    for number, offset in enumerate(offsets):
        handle.seek(offset)
        handle.readinto(view[number * frame_bytes : (number + 1) * frame_bytes])
"""
RAW_COPY = """
stack = np.lib.stride_tricks.as_strided(np.memmap({path!r}, np.uint8, mode="r")[{first}:].view(np.float32), shape=({frames}, {height} * {width}), strides=({stride}, 4))
with h5py.File({out!r}, "w") as file:
    target = file.create_dataset("data", shape=stack.shape, dtype=stack.dtype)
    step = max(1, (64 << 20) // ({height} * {width} * 4))
    for begin in range(0, {frames}, step):
        target[begin : begin + step] = stack[begin : begin + step]
"""


def frame_offsets(path: Path) -> list[int]:
    """Where each frame's data starts, as FabIO (EDF) or tifffile (TIFF) find it."""
    if path.suffix == ".edf":
        import fabio

        image = fabio.open(str(path))
        return [frame.start for frame in image._frames]
    import tifffile

    with tifffile.TiffFile(path) as tif:
        return [page.dataoffsets[0] for page in tif.pages]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size-mb", type=int, default=512, help="size of each stack")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    import fabio.edfimage
    import tifffile

    from bench_convert import SCRATCH, run

    warm_memory()
    height, width = 1024, 1024
    frames = max(2, args.size_mb * 2**20 // (height * width * 4))
    plan: dict[str, tuple[str, str, str]] = {}  # name -> (baseline name, setup, work)
    with tempfile.TemporaryDirectory(dir=SCRATCH) as folder:
        folder = Path(folder)
        rng = np.random.default_rng(0)
        edf, tif = folder / "stack.edf", folder / "stack.tif"
        image = fabio.edfimage.EdfImage(data=rng.random((height, width), dtype=np.float32))
        for _ in range(frames - 1):
            image.append_frame(data=rng.random((height, width), dtype=np.float32))
        image.write(str(edf))
        del image
        with tifffile.TiffWriter(tif, bigtiff=True) as writer:
            for _ in range(frames):
                writer.write(rng.random((height, width), dtype=np.float32), contiguous=True)
        # Every step: the libraries' imports are a fixed cost per process (bench_convert.py measures it), not work;
        # and the outputs of earlier steps go first (a frames-as-position output is 4 GiB of tmpfs to free).
        outputs = [str(folder / "out.h5"), str(folder / "raw.h5")]
        setup = f"import h5py, numpy as np, usidbridge as ub, fabio, tifffile, os\nfor _path in {outputs!r}:\n    os.path.exists(_path) and os.remove(_path)"
        for path, peer_name, peer in (
            (edf, "fabio: every frame, stacked", f"import fabio\nimg = fabio.open({str(edf)!r})\narray = np.stack([img.getframe(i).data for i in range(img.nframes)])"),
            (tif, "tifffile.imread", f"import tifffile\narray = tifffile.imread({str(tif)!r})"),
        ):
            kind = path.suffix[1:].upper()
            offsets = frame_offsets(path)
            names = {"path": str(path), "frames": frames, "height": height, "width": width, "frame_bytes": height * width * 4, "offsets": offsets}
            stride = offsets[1] - offsets[0]
            read_base, copy_base = f"{kind}: raw readinto at the frame offsets", f"{kind}: raw byte copy, memory map to h5py in 64 MiB blocks"
            plan[read_base] = (read_base, setup, RAW_READINTO.format(**names))
            plan[copy_base] = (copy_base, setup, RAW_COPY.format(**names, first=offsets[0], stride=stride, out=str(folder / "raw.h5")))
            plan[f"{kind}: {peer_name} (peer)"] = (read_base, setup, peer)
            for frames_as in ("spectroscopic", "position"):
                options = f"read_options={{'frames': {frames_as!r}}}"
                plan[f"{kind}: eager read to N-D, frames {frames_as}"] = (read_base, setup, f"array = ub.read({str(path)!r}, frames={frames_as!r})[0].to_ndarray()")
                plan[f"{kind} → h5USID, frames {frames_as}"] = (copy_base, setup, f"ub.convert({str(path)!r}, {str(folder / 'out.h5')!r}, overwrite=True, {options})")
        times: dict[str, list[float]] = {name: [] for name in plan}
        peaks = {name: 0.0 for name in plan}
        for round_number in range(-1, args.rounds):
            for name in plan if round_number % 2 == 0 else reversed(list(plan)):
                seconds, anon = run(*plan[name][1:])
                if round_number >= 0:
                    times[name].append(seconds)
                peaks[name] = max(peaks[name], anon)
    size = frames * height * width * 4 / 2**20
    lines = [
        "## Image stacks (EDF, TIFF)",
        "",
        f"Measured by `bench/bench_images.py` on {time.strftime('%Y-%m-%d')}: a {size:.0f} MiB stack of {frames} frames of "
        f"{height} x {width} float32 in each format, on tmpfs; a warm-up round, then {args.rounds} rounds in alternating order, "
        "best time of each against the best of its baseline in the same run. Each step runs in a fresh process that has imported h5py, usidbridge, fabio and tifffile; `bench_convert.py` gives the import costs. Anonymous memory is what the process allocated "
        "(memory maps and the page cache do not count).",
        "",
        "| work | best (s) | × baseline | baseline | peak anonymous MiB | anonymous / stack |",
        "|---|---|---|---|---|---|",
    ]
    for name, (baseline, _setup, _work) in plan.items():
        best, base = min(times[name]), min(times[baseline])
        lines.append(f"| {name} | {best:.2f} | {best / base:.2f} | {baseline.split(': ', 1)[-1]} | {peaks[name]:.0f} | {peaks[name] / size:.2f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    record("images", text)


if __name__ == "__main__":
    main()
