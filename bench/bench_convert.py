"""Conversion paths at the machine's limit: each against the raw h5py work on the same bytes, in the same run.

Run with `python bench/bench_convert.py [--mib 1024 4096] [--rounds 3] [--steps NAME ...] [--record]`.
Every step runs in a child process that has imported the libraries of every format (h5py, usidbridge,
xarray, netCDF4, dask and what they import on first use) and times only the work, sampling its anonymous memory (memory maps and the
page cache do not count). What importing costs once per process is a table of its own: a fresh
process reading a small file of each format, against Python importing h5py and numpy. The machine's memory is touched once first
(`machine.warm_memory`), then after a warm-up round, rounds alternate the order of the steps; the
table gives the best time against the best baseline, the per-round ratios, and the peak anonymous
memory against the data size. Files are on tmpfs (/dev/shm) where there is one, so that the disk's
write-back of one step's output does not slow the next; elsewhere in the page cache.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SCRATCH = "/dev/shm" if Path("/dev/shm").is_dir() else None  # tmpfs: no disk write-back from one step slowing the next
sys.path.insert(0, str(HERE))
from bench_images import SAMPLER  # noqa: E402
from bench_writers import BASELINE as RAW_COPY  # noqa: E402
from machine import child_env, warm_memory  # noqa: E402
from results import record  # noqa: E402

TIMED = "\nimport time\n{setup}\n_bench_started = time.perf_counter()\n{work}\nprint(time.perf_counter() - _bench_started, peak_anon[0])"
# Every step's process imports what any step uses, and what dask (distributed) and xarray (pint) import on
# first use: what imports cost is measured once, by `fixed_costs`.
# The structure probe's child is started too (`usidbridge.isolation.probed`): once per process, a
# fork or, in a process running threads (as these, with their memory sampler), a new interpreter.
IMPORTS = "import h5py, numpy as np, usidbridge as ub, xarray, netCDF4, dask.array, distributed, pint\nub.isolation.probed(len, '', path='.')"
# HyperSpy imports its reader machinery (hyperspy.io), its signal classes and its compute helpers on first
# use: an import cost like the others, paid here on a tiny signal so that the step times the load and the compute alone.
HYPERSPY_IMPORTS = "\nimport hyperspy.api as hs\nfrom usidbridge.converters import hyperspy as converter\nhs.load\nhs.signals.Signal1D(np.zeros((2, 2))).as_lazy().compute(show_progressbar=False)"
RAW_READ = "with h5py.File({raw!r}, 'r') as file:\n    array = file[{name!r}][()].reshape({nd_shape})"
RAW_WRITE = "with h5py.File({out!r}, 'w') as file:\n    file.create_dataset('data', data=array)"
DASK_COMPUTE = "file = h5py.File({raw!r}, 'r')\narray = dask.array.from_array(file['data'], chunks=((64 << 20) // ({spectral} * 4), {spectral})).reshape({nd_shape}).compute()"
SAME_NETCDF = "raw h5py block copy of the netCDF variable (same source pages)"
SAME_NEXUS = "raw h5py block copy of the NeXus data (same source pages)"
SAME_H5USID = "raw h5py read + reshape of our Main dataset (same file)"
RAW_COPY_ND = """
with h5py.File({source!r}, 'r') as source, h5py.File({target!r}, 'w') as target:
    data = source[{name!r}]
    out = target.create_dataset('copy', shape=(data.shape[0] * data.shape[1], data.shape[2]), dtype=data.dtype)
    slabs = max(1, (64 << 20) // (data.shape[1] * data.shape[2] * data.dtype.itemsize))
    for start in range(0, data.shape[0], slabs):
        block = data[start:start + slabs]
        out[start * data.shape[1]:(start + len(block)) * data.shape[1]] = block.reshape(-1, data.shape[2])
"""
NEEDS = {"netCDF → h5USID": "netcdf", "NeXus → h5USID": "nexus", SAME_NETCDF: "netcdf", SAME_NEXUS: "nexus", SAME_H5USID: "h5usid", "h5USID → NeXus": "h5usid", "h5USID → netCDF": "h5usid", "h5USID read to N-D": "h5usid", "xarray engine=usid, .load().values": "h5usid", "HyperSpy lazy load + compute": "h5usid"}
MEMORY = "array = np.ones({shape}, np.float32)\ndataset = ub.Dataset.from_ndarray(array.reshape({nd_shape}), [ub.Dimension('Y', 'nm', {side}), ub.Dimension('X', 'nm', {side})], [ub.Dimension('Bias', 'V', {spectral})], quantity='Current', units='A')"


def steps(files: dict[str, Path], out: Path, shape: tuple[int, int], side: int) -> dict[str, tuple[tuple[str, ...], str, str]]:
    """name → (baseline names, setup code, work code). A conversion's second baseline is raw h5py
    reading its own source file: the same bytes read at different speeds from tmpfs files written at
    different times (`bench_h5usid.py` says why), so only that ratio is our code's alone."""
    nd_shape = (side, side, shape[1])
    files = {"raw": out.parent / "raw.h5", **{kind: out.parent / f"map{suffix}" for kind, suffix in SUFFIXES.items()}, **files}
    names = {"raw": str(files["raw"]), "out": str(out), "nd_shape": nd_shape, "shape": shape, "side": side, "spectral": shape[1]}
    convert = "ub.convert({source!r}, {out!r}, to='h5usid', overwrite=True)"
    # Every step writes a new file: on tmpfs, replacing a file needs fresh pages while truncating one reuses its own.
    clear = f"\nimport os\nfor _path in {[str(out), str(out) + '.nxs', str(out) + '.nc']!r}:\n    os.path.exists(_path) and os.remove(_path)"
    return {name: ((baseline,) if isinstance(baseline, str) else baseline, setup + clear, work) for name, (baseline, setup, work) in {
        "raw h5py block copy": ("raw h5py block copy", IMPORTS, RAW_COPY.format(source=names["raw"], target=names["out"], name="data")),
        "netCDF → h5USID": (("raw h5py block copy", SAME_NETCDF), IMPORTS, convert.format(source=str(files["netcdf"]), out=str(out))),
        "NeXus → h5USID": (("raw h5py block copy", SAME_NEXUS), IMPORTS, convert.format(source=str(files["nexus"]), out=str(out))),
        SAME_NETCDF: (SAME_NETCDF, IMPORTS, RAW_COPY_ND.format(source=str(files["netcdf"]), target=names["out"], name="Current")),
        SAME_NEXUS: (SAME_NEXUS, IMPORTS, RAW_COPY_ND.format(source=str(files["nexus"]), target=names["out"], name="entry/Current/data")),
        "h5USID → NeXus": ("raw h5py block copy", IMPORTS, f"ub.convert({str(files['h5usid'])!r}, {str(out) + '.nxs'!r}, overwrite=True)"),
        "h5USID → netCDF": ("raw h5py block copy", IMPORTS, f"ub.convert({str(files['h5usid'])!r}, {str(out) + '.nc'!r}, overwrite=True)"),
        "raw h5py read + reshape (contiguous)": ("raw h5py read + reshape (contiguous)", IMPORTS, RAW_READ.format(**names, name="data")),
        SAME_H5USID: (SAME_H5USID, IMPORTS, RAW_READ.format(**{**names, "raw": str(files["h5usid"])}, name="Measurement_000/Channel_000/Raw_Data")),
        "h5USID read to N-D": (("raw h5py read + reshape (contiguous)", SAME_H5USID), IMPORTS, f"array = ub.read({str(files['h5usid'])!r})[0].to_ndarray()"),
        "xarray engine=usid, .load().values": (("raw h5py read + reshape (contiguous)", SAME_H5USID), IMPORTS + "\nimport xarray", f"array = xarray.open_dataset({str(files['h5usid'])!r}, engine='usid').load()['Current'].values"),
        "HyperSpy lazy load + compute": (("raw h5py read + reshape (contiguous)", SAME_H5USID), IMPORTS + HYPERSPY_IMPORTS, f"signal = hs.load({str(files['h5usid'])!r}, file_format=converter, lazy=True)\nsignal.compute(show_progressbar=False)"),
        "dask over the raw file through h5py in 64 MiB chunks, compute (the chunks and their concatenation both in memory)": ("raw h5py read + reshape (contiguous)", IMPORTS, DASK_COMPUTE.format(**names)),
        "raw h5py write (contiguous)": ("raw h5py write (contiguous)", IMPORTS + "\n" + MEMORY.format(**names), RAW_WRITE.format(**names)),
        "h5USID write from memory": ("raw h5py write (contiguous)", IMPORTS + "\n" + MEMORY.format(**names), f"ub.write(dataset, {str(out)!r}, overwrite=True)"),
    }.items()}


def run(setup: str, work: str) -> tuple[float, float]:
    result = subprocess.run([sys.executable, "-c", SAMPLER + TIMED.format(setup=setup, work=work)], capture_output=True, text=True, env=child_env())
    if result.returncode:
        raise RuntimeError(f"benchmark step failed:\n{work}\n{result.stderr}")
    seconds, anon_kib = result.stdout.strip().splitlines()[-1].split()
    return float(seconds), int(anon_kib) / 1024


SUFFIXES = {"h5usid": ".h5", "nexus": ".nxs", "netcdf": ".nc"}


def make_files(folder: Path, mib: int, kinds: set[str]) -> tuple[dict[str, Path], tuple[int, int], int]:
    """The same float32 spectral map (side x side positions x 256 points) as raw HDF5 and as the `kinds` of `SUFFIXES`."""
    import h5py

    import usidbridge as ub

    spectral = 256
    side = int((mib * 2**20 // (spectral * 4)) ** 0.5)
    shape = (side * side, spectral)
    files = {"raw": folder / "raw.h5"}
    with h5py.File(files["raw"], "w") as file:
        data = file.create_dataset("data", shape=shape, dtype=np.float32)
        step = (64 << 20) // (spectral * 4)
        for begin in range(0, shape[0], step):
            rows = min(step, shape[0] - begin)
            data[begin : begin + rows] = np.arange(begin * spectral, (begin + rows) * spectral, dtype=np.float32).reshape(rows, spectral)
    with h5py.File(files["raw"], "r") as file:
        dataset = ub.Dataset(ub.model.FileArray(file["data"]), ub.Ancillary([ub.Dimension("Y", "nm", side), ub.Dimension("X", "nm", side)]), ub.Ancillary([ub.Dimension("Bias", "V", spectral)]), quantity="Current", units="A")
        for name in sorted(kinds & set(SUFFIXES)):
            files[name] = ub.write(dataset, folder / f"map{SUFFIXES[name]}", format=name)
    for path in files.values():  # into the page cache
        with open(path, "rb") as handle:
            while handle.read(64 << 20):
                pass
    return files, shape, side


FIXED = "import time\n_started = time.perf_counter()\n{code}\nprint(time.perf_counter() - _started)"


def fixed_costs(folder: Path, rounds: int) -> list[str]:
    """Rows of what one command costs before any work: a fresh process reading a small file of each format
    (imports, format discovery and detection included), against one that imports h5py and numpy."""
    import usidbridge as ub

    dims = [ub.Dimension("Y", "nm", 16), ub.Dimension("X", "nm", 16)], [ub.Dimension("Bias", "V", 16)]
    small = ub.Dataset.from_ndarray(np.ones((16, 16, 16), np.float32), *dims, quantity="Current", units="A")
    codes = {"Python importing h5py and numpy (baseline)": "import h5py, numpy", "import usidbridge": "import usidbridge"}
    for suffix in (".h5", ".nxs", ".nc", ".hspy", ".tif", ".edf", ".spec"):
        path = ub.write(small, folder / f"small{suffix}")
        codes[f"read a small {suffix} file"] = f"import usidbridge as ub\nub.read({str(path)!r})"
    seconds = {}
    for name, code in codes.items():
        times = []
        for _ in range(rounds + 1):  # the first run writes the bytecode caches
            result = subprocess.run([sys.executable, "-c", FIXED.format(code=code)], capture_output=True, text=True, env=child_env(), check=True)
            times.append(float(result.stdout.split()[-1]))
        seconds[name] = min(times[1:])
    base = seconds["Python importing h5py and numpy (baseline)"]
    rows = ["| fresh process | best (s) | above the baseline (s) |", "|---|---|---|"]
    rows += [f"| {name} | {value:.3f} | {value - base:+.3f} |" for name, value in seconds.items()]
    return rows


def _wall(command: list[str]) -> float:
    """Seconds of a fresh process, timed from outside: interpreter start-up and exit included."""
    started = time.perf_counter()
    subprocess.run(command, capture_output=True, env=child_env(), check=True)
    return time.perf_counter() - started


def command_lines(folder: Path, rounds: int, files: dict[str, Path] | None = None) -> list[str]:
    """Rows of ``usidbridge convert`` as a user runs it (a fresh process, timed from outside): 1 MiB
    files of several formats against a process importing h5py and numpy, and, when `files` holds
    the map as netCDF and NeXus, their conversion against a fresh process doing the raw block copy."""
    import fabio
    import tifffile

    import usidbridge as ub

    image = np.random.default_rng(0).integers(0, 60000, (512, 1024)).astype(np.uint16)
    tifffile.imwrite(folder / "one.tif", image)
    fabio.edfimage.EdfImage(data=image).write(str(folder / "one.edf"))
    ub.write(ub.Dataset.from_ndarray(image, [ub.Dimension("Y", "m", 512), ub.Dimension("X", "m", 1024)]), folder / "one.h5")
    usidbridge = [sys.executable, "-m", "usidbridge", "convert"]
    commands = {"Python importing h5py and numpy (baseline)": [sys.executable, "-c", "import h5py, numpy"]}
    commands.update({f"usidbridge convert of a 1 MiB {suffix} to h5USID": [*usidbridge, str(folder / f"one{suffix}"), str(folder / "out.h5"), "--overwrite"] for suffix in (".tif", ".edf", ".h5")})
    pairs = {}
    for kind, name in (("netcdf", "Current"), ("nexus", "entry/Current/data")):
        if files and kind in files:
            raw = "import h5py\n" + RAW_COPY_ND.format(source=str(files[kind]), target=str(folder / "raw_copy.h5"), name=name)
            pairs[kind] = (f"usidbridge convert of the {files[kind].suffix} map to h5USID", f"raw block copy of the {files[kind].suffix} map")
            commands[pairs[kind][0]] = [*usidbridge, str(files[kind]), str(folder / "big.h5"), "--overwrite"]
            commands[pairs[kind][1]] = [sys.executable, "-c", raw]
    seconds: dict[str, list[float]] = {name: [] for name in commands}
    outputs = [folder / "out.h5", folder / "big.h5", folder / "raw_copy.h5"]
    for round_number in range(rounds + 1):  # the first round writes the bytecode caches
        for name in commands if round_number % 2 == 0 else reversed(commands):
            for output in outputs:  # each command writes a new file: replacing one on tmpfs frees its pages, truncating reuses them
                output.unlink(missing_ok=True)
            elapsed = _wall(commands[name])
            if round_number:
                seconds[name].append(elapsed)
    base = min(seconds["Python importing h5py and numpy (baseline)"])
    rows = ["| command line, fresh process | best (s) | median (s) | against |", "|---|---|---|---|"]
    for name, values in seconds.items():
        against = f"{min(values) - base:+.3f} s above the baseline"
        for ours, raw in pairs.values():
            if name == ours:
                against = f"{min(values) / min(seconds[raw]):.2f}x the raw copy; {min(values) - min(seconds[raw]):+.2f} s"
        rows.append(f"| {name} | {min(values):.3f} | {statistics.median(values):.3f} | {against} |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mib", type=int, nargs="+", default=[1024])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", nargs="+", help="names of the steps to run (their baselines are added); all by default")
    parser.add_argument("--record", action="store_true")
    arguments = parser.parse_args()
    warm_memory()
    commands: list[str] | None = None
    rows = ["| data | work | best / best baseline | per-round ratio: median (range) | ours, best (s) | baseline | peak anonymous MiB | peak / data |", "|---|---|---|---|---|---|---|---|"]
    for mib in arguments.mib:
        with tempfile.TemporaryDirectory(dir=SCRATCH) as folder_name:
            folder = Path(folder_name)
            spectral = 256
            side = int((mib * 2**20 // (spectral * 4)) ** 0.5)
            everything = steps({}, folder / "out.h5", (side * side, spectral), side)
            chosen = arguments.steps or list(everything)
            plan = {name: everything[name] for name in everything if name in chosen or any(name in everything[step][0] for step in chosen)}
            files, shape, side = make_files(folder, mib, {NEEDS[name] for name in plan if name in NEEDS})
            times: dict[str, list[float]] = {name: [] for name in plan}
            peaks: dict[str, float] = {name: 0.0 for name in plan}
            for round_number in range(-1, arguments.rounds):  # round -1 warms up: the machine's first touch of fresh memory is slow
                order = list(plan) if round_number % 2 == 0 else list(reversed(plan))
                for name in order:
                    _baseline, setup, work = plan[name]
                    seconds, anon = run(setup, work)
                    if round_number >= 0:
                        times[name].append(seconds)
                    peaks[name] = max(peaks[name], anon)
            if "netcdf" in files or "nexus" in files:
                commands = command_lines(folder, arguments.rounds, files)
            data_mib = shape[0] * shape[1] * 4 / 2**20
            for name, (baselines, _setup, _work) in plan.items():
                for baseline in baselines:
                    ratios = [ours / base for ours, base in zip(times[name], times[baseline])]
                    rows.append(
                        f"| {data_mib:.0f} MiB | {name} | {min(times[name]) / min(times[baseline]):.2f} | {statistics.median(ratios):.2f} ({min(ratios):.2f}–{max(ratios):.2f}) | "
                        f"{min(times[name]):.2f} | {baseline} | {peaks[name]:.0f} | {peaks[name] / data_mib:.2f} |"
                    )
    with tempfile.TemporaryDirectory(dir=SCRATCH) as folder_name:
        fixed = fixed_costs(Path(folder_name), arguments.rounds)
        if commands is None:
            commands = command_lines(Path(folder_name), arguments.rounds)
    table, fixed_table = "\n".join(rows), "\n".join(fixed) + "\n\n" + "\n".join(commands)
    print(table + "\n\n" + fixed_table)
    if arguments.record:
        sizes = " and ".join(f"{mib} MiB" for mib in arguments.mib)
        section = "Conversion paths (bench/bench_convert.py)" + (f", {sizes}: {', '.join(arguments.steps)}" if arguments.steps else "")
        record(
            section,
            f"Measured by `bench/bench_convert.py` on {time.strftime('%Y-%m-%d')} at {sizes}: a warm-up round, then {arguments.rounds} rounds in alternating order, "
            f"files on tmpfs. Each step runs in a process that has imported every format's libraries; the second table gives what the imports cost a fresh process, the third `usidbridge convert` run as a user runs it.\n\n{table}\n\n{fixed_table}",
        )


if __name__ == "__main__":
    main()
