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
    result = subprocess.run([sys.executable, "-c", SAMPLER + code + REPORT], capture_output=True, text=True)
    if result.returncode:
        raise RuntimeError(f"benchmark step failed:\n{code}\n{result.stderr}")
    anon, resident = (int(value) / 1024 for value in result.stdout.strip().splitlines()[-1].split())
    return time.perf_counter() - start, anon, resident


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size-mb", type=int, default=512, help="size of each stack")
    args = parser.parse_args()
    import fabio.edfimage
    import tifffile

    frame_shape = (1024, 1024)
    frames = max(2, args.size_mb * 2**20 // (frame_shape[0] * frame_shape[1] * 4))
    rows = []
    with tempfile.TemporaryDirectory(dir=HERE) as folder:
        folder = Path(folder)
        rng = np.random.default_rng(0)
        edf, tif = folder / "stack.edf", folder / "stack.tif"
        image = fabio.edfimage.EdfImage(data=rng.random(frame_shape, dtype=np.float32))
        for _ in range(frames - 1):
            image.append_frame(data=rng.random(frame_shape, dtype=np.float32))
        image.write(str(edf))
        del image
        with tifffile.TiffWriter(tif, bigtiff=True) as writer:
            for _ in range(frames):
                writer.write(rng.random(frame_shape, dtype=np.float32), contiguous=True)
        baseline_import = measure("import usidbridge, numpy, h5py")[1]
        for path, peer_name, peer in (
            (edf, "fabio: read every frame", f"import fabio\nimg = fabio.open({str(edf)!r})\nframes = [img.getframe(i).data for i in range(img.nframes)]"),
            (tif, "tifffile.imread of the stack", f"import tifffile\ndata = tifffile.imread({str(tif)!r})"),
        ):
            for frames_as in ("position", "spectroscopic"):
                ours = (
                    "import usidbridge as ub\n"
                    f"ub.convert({str(path)!r}, {str(folder / (path.name + '.' + frames_as + '.h5'))!r}, read_options={{'frames': {frames_as!r}}})"
                )
                rows.append((f"{path.suffix[1:].upper()} {frames} x {frame_shape[0]}x{frame_shape[1]} float32 → h5USID, frames as {frames_as}", *measure(ours)))
            rows.append((f"{peer_name} (peer, reading only)", *measure(peer)))
    size = frames * frame_shape[0] * frame_shape[1] * 4 / 2**20
    lines = [
        "## Image stacks (EDF, TIFF)",
        "",
        f"Measured by `bench/bench_images.py` on {time.strftime('%Y-%m-%d')}: a {size:.0f} MiB stack in each format, lazy convert "
        f"(`ub.convert`, memory maps) against the peer library reading the same stack. Anonymous memory is what the process "
        f"allocated (bare `import usidbridge`: {baseline_import:.0f} MiB); resident also counts mapped file pages, which the kernel can drop.",
        "",
        "| work | seconds | peak anonymous MiB | anonymous / stack size | peak resident MiB |",
        "|---|---|---|---|---|",
    ]
    lines += [f"| {work} | {seconds:.2f} | {anon:.0f} | {anon / size:.2f} | {resident:.0f} |" for work, seconds, anon, resident in rows]
    text = "\n".join(lines) + "\n"
    print(text)
    record("images", text)


if __name__ == "__main__":
    main()
