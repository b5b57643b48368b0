"""A deterministic mutational fuzzer over seed files of every format, and the runner that classifies outcomes.

Seeds are the real files in ../shared/data, the fixtures, and files our own writers make (they
carry our ``usid_*`` keys and JSON descriptions, which the readers parse). A mutant is one seed with
one mutation, made from ``(seed index, mutation, random seed)`` alone, so any outcome can be
rebuilt. Each mutant is read (``ub.read`` lazily, then every dataset materialised) and, for HDF5,
validated, in a worker process; the outcome is **ok**, **clean** (a usidbridge error naming the
file), **uncaught** (any other exception, or a message without the file), **hang** (no answer in
time) or **crash** (the worker died).

``bench/fuzz.py`` runs thousands per format and writes the table to bench/RESULTS.md; the test
suite runs a small fixed sample (tests/test_fuzz.py).
"""

from __future__ import annotations

import os
import pickle
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import queue
import traceback
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import instrument_files

HERE = Path(__file__).resolve().parent
SHARED = HERE.parents[1] / "shared" / "data"
FIXTURES = HERE.parent / "fixtures"
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
OUTCOMES = ("ok", "clean", "uncaught", "hang", "crash")
MATERIALISE_LIMIT = 2**28  # bytes: a mutant declaring more is read only in part (the check is on declared sizes)


@dataclass(frozen=True)
class Seed:
    format: str
    path: Path


def _our_files(folder: Path) -> list[Seed]:
    """Files written by usidbridge's own writers, from the fixtures."""
    import usidbridge as ub

    (iv_map,) = ub.read(FIXTURES / "pyusid_iv_map.h5")
    (frames,) = ub.read(FIXTURES / "detector_frames.edf")
    small = ub.Dataset.from_ndarray(np.arange(24.0).reshape(2, 3, 4), [ub.Dimension("Y", "nm", 2), ub.Dimension("X", "nm", 3)], [ub.Dimension("Energy", "eV", [1.0, 2.0, 4.0, 8.0])], quantity="Counts", units="", metadata={"sample": "Cu", "nested": {"list": [1, "a", None]}})
    written = [
        ("h5usid", ub.write(iv_map, folder / "ours_iv.h5")),
        ("nexus", ub.write(small, folder / "ours.nxs")),
        ("dual", ub.write(iv_map, folder / "ours_dual.h5", "nexus", dual=True)),
        ("netcdf", ub.write(small, folder / "ours.nc")),
        ("hyperspy", ub.write(small, folder / "ours.hspy")),
        ("edf", ub.write(frames, folder / "ours.edf")),
        ("tiff", ub.write(small, folder / "ours.tif")),
        ("spec", ub.write(ub.read(FIXTURES / "demo_scans.spec"), folder / "ours.spec")),
    ]
    rng = np.random.default_rng(0)
    nanosurf, wsxm = folder / "scan.nid", folder / "scan.top"
    nanosurf.write_bytes(instrument_files.nid([instrument_files.nid_channel("Scan forward", "Z-Axis", "m", 16, 8, 16, rng.integers(-3000, 3000, (8, 16))),
                                        instrument_files.nid_channel("Spec forward", "Deflection", "V", 20, 2, 32, rng.integers(-3000, 3000, (2, 20)))]))
    wsxm.write_bytes(instrument_files.wsxm(rng.integers(-3000, 3000, (8, 16))))
    mrc, bruker = folder / "stack.mrc", folder / "map.bcf"
    mrc.write_bytes(instrument_files.mrc(rng.random((4, 12, 16))))
    bruker.write_bytes(instrument_files.bcf(rng.poisson(0.8, (3, 4, 64)) + np.eye(1, 64, dtype=int) * 60, rng.integers(0, 4000, (3, 4))))
    written += [("nanosurf", nanosurf), ("wsxm", wsxm), ("rosettasciio", mrc), ("rosettasciio", bruker)]
    columns = folder / "ours_columns.txt"
    columns.write_text("# Energy  I0  It\n" + "\n".join(f"{8900 + i} {1e5 + i} {3e4 - i}" for i in range(30)) + "\n")
    written.append(("columns", columns))
    return [Seed(name, Path(path)) for name, path in written]


def _format_of(path: Path) -> str:
    suffix = path.suffix.lower()
    head = path.read_bytes()[:16]
    if "rosettasciio" in path.parts:
        return "rosettasciio"
    if suffix in (".sxm", ".3ds") or (suffix == ".dat" and head.startswith(b"Experiment\t")):
        return "nanonis"
    if suffix in (".spec", ".dat"):
        return "spec"
    if suffix in (".edf",):
        return "edf"
    if suffix in (".tif", ".tiff"):
        return "tiff"
    if suffix in (".nxs",):
        return "nexus"
    if suffix in (".nc",):
        return "netcdf"
    if suffix in (".hspy",):
        return "hyperspy"
    if suffix in (".ibw",):
        return "igor"
    if suffix in (".gwy", ".gsf"):
        return "gwyddion"
    if suffix in (".di", ".spm", ".001"):
        return "nanoscope"
    if suffix in (".hf5",):
        return "nsid"
    if suffix in (".axz",):
        return "anasys"
    if suffix in (".mdt",):
        return "ntmdt"
    if head.startswith(HDF5_SIGNATURE):
        return "h5usid"
    return "other"


def plain_hdf5(folder: Path) -> Seed:
    import h5py

    path = folder / "plain.h5"
    with h5py.File(path, "w") as file:
        data = file.create_dataset("detector/image", data=np.arange(60.0).reshape(3, 4, 5))
        scale = file.create_dataset("detector/energy", data=np.linspace(1, 2, 5))
        scale.make_scale("energy")
        scale.attrs["units"] = "eV"
        data.dims[2].attach_scale(scale)
    return Seed("hdf5", path)


def seeds(folder: Path, extra: Collection[Path] = ()) -> list[Seed]:
    """Every seed, in a fixed order: real files, fixtures, our own files (written into `folder`), then
    the files in the `extra` folders (a user's own instrument files), under the format they are detected as."""
    from usidbridge import registry

    found = [Seed(_format_of(path), path) for path in sorted(SHARED.rglob("*")) if path.is_file() and path.suffix.lower() not in (".md", ".ser")]
    found += [Seed(_format_of(path), path) for path in sorted(FIXTURES.iterdir()) if path.is_file() and path.suffix not in (".py", ".md")]  # not the __pycache__ an import leaves
    found += _our_files(folder)
    found.append(plain_hdf5(folder))
    found += [Seed(registry.detect(path).name, path) for extra_folder in extra for path in sorted(Path(extra_folder).rglob("*")) if path.is_file()]
    return [seed for seed in found if seed.format != "other"]


# ---------------------------------------------------------------- byte and text mutations


def truncate(data: bytes, rng: random.Random) -> bytes:
    return data[: rng.randrange(0, max(1, len(data)))]


def bit_flips(data: bytes, rng: random.Random) -> bytes:
    array = bytearray(data)
    for _ in range(rng.choice((1, 2, 4, 16, 64))):
        position = rng.randrange(len(array))
        array[position] ^= 1 << rng.randrange(8)
    return bytes(array)


def overwrite_range(data: bytes, rng: random.Random) -> bytes:
    array = bytearray(data)
    start = rng.randrange(len(array))
    length = rng.choice((1, 4, 8, 64, 512))
    filler = rng.choice((b"\x00", b"\xff", b"\x7f", bytes([rng.randrange(256)])))
    array[start : start + length] = filler * len(array[start : start + length])
    return bytes(array)


def header_lies(data: bytes, rng: random.Random) -> bytes:
    """Change one number in a text header line (SPEC #N, #@CHANN, mesh intervals; EDF Dim_*, Size; usid_* keys)."""
    head_end = data.find(b"}") if data.lstrip().startswith(b"{") else len(data)
    text = data[: head_end if head_end > 0 else len(data)]
    numbers = [match for match in re.finditer(rb"-?\d+(\.\d+)?", text)]
    if not numbers:
        return bit_flips(data, rng)
    match = rng.choice(numbers)
    lie = rng.choice((b"0", b"-1", b"1", b"999999999", b"18446744073709551617", b"nan", b"1e308", str(int(float(match.group()) * 2 + 1)).encode()))
    return data[: match.start()] + lie + data[match.end() :]


def line_shuffle(data: bytes, rng: random.Random) -> bytes:
    """Drop, duplicate or swap text lines (a scan's data lines, header lines)."""
    lines = data.split(b"\n")
    if len(lines) < 3:
        return truncate(data, rng)
    index = rng.randrange(len(lines))
    action = rng.choice(("drop", "duplicate", "swap", "garbage"))
    if action == "drop":
        del lines[index]
    elif action == "duplicate":
        lines.insert(index, lines[index])
    elif action == "swap":
        other = rng.randrange(len(lines))
        lines[index], lines[other] = lines[other], lines[index]
    else:
        lines[index] = bytes(rng.randrange(32, 127) for _ in range(rng.randrange(1, 40)))
    return b"\n".join(lines)


def zero_tail(data: bytes, rng: random.Random) -> bytes:
    """Zeros from a point to the end: a file whose writer died after allocating it."""
    start = rng.randrange(len(data))
    return data[:start] + bytes(len(data) - start)


def duplicate_range(data: bytes, rng: random.Random) -> bytes:
    """A range of the file written again further on (a repeated block, a bad copy)."""
    start = rng.randrange(len(data))
    piece = data[start : start + rng.choice((16, 256, 4096, 65536))]
    at = rng.randrange(len(data))
    return data[:at] + piece + data[at:]


def delete_range(data: bytes, rng: random.Random) -> bytes:
    start = rng.randrange(len(data))
    return data[:start] + data[start + rng.choice((1, 4, 64, 1024)) :]


def int_extremes(data: bytes, rng: random.Random) -> bytes:
    """A 2, 4 or 8-byte field in the first 4 KiB (sizes, counts, offsets) set to an extreme."""
    array = bytearray(data)
    width = rng.choice((2, 4, 8))
    position = rng.randrange(0, max(1, min(len(array), 4096) - width + 1), width)
    value = rng.choice((0, 1, 2 ** (8 * width - 1) - 1, 2 ** (8 * width) - 1, 2 ** (8 * width - 1)))
    array[position : position + width] = value.to_bytes(width, rng.choice(("little", "big")))
    return bytes(array)


BYTE_MUTATIONS: dict[str, Callable[[bytes, random.Random], bytes]] = {
    "truncate": truncate,
    "bit_flips": bit_flips,
    "overwrite_range": overwrite_range,
    "zero_tail": zero_tail,
    "duplicate_range": duplicate_range,
    "delete_range": delete_range,
    "int_extremes": int_extremes,
}
TEXT_MUTATIONS: dict[str, Callable[[bytes, random.Random], bytes]] = {"header_lies": header_lies, "line_shuffle": line_shuffle}


# ---------------------------------------------------------------- HDF5 structural mutations


def _objects(file) -> list:
    import h5py

    found = []
    file.visititems(lambda name, obj: found.append(obj))
    return [obj for obj in found if isinstance(obj, (h5py.Dataset, h5py.Group))]


def _datasets(file) -> list:
    import h5py

    return [obj for obj in _objects(file) if isinstance(obj, h5py.Dataset)]


def hdf5_delete(file, rng: random.Random) -> None:
    victim = rng.choice(_objects(file))
    del file[victim.name]


def _replace(file, victim, **create) -> None:
    """Put a new dataset (``create_dataset(**create)``) in the place of `victim`, with the attributes it can take."""
    name, attributes = victim.name, dict(victim.attrs)
    del file[name]
    new = file.create_dataset(name, **create)
    for key, value in attributes.items():
        try:
            new.attrs[key] = value
        except (TypeError, ValueError, OSError):
            pass


def hdf5_retype(file, rng: random.Random) -> None:
    victim = rng.choice(_datasets(file))
    shape = victim.shape
    replacement = rng.choice((np.zeros(shape, dtype="f4") if shape else np.float32(1), np.array([b"text"] * max(1, int(np.prod(shape[:1] or (1,))))), np.zeros((2, 2, 2), dtype="i8"), np.array([-1, -2, -3], dtype="i4")))
    _replace(file, victim, data=replacement)


def hdf5_wrong_reference(file, rng: random.Random) -> None:
    import h5py

    holders = [obj for obj in _datasets(file) if any(isinstance(value, h5py.Reference) for value in obj.attrs.values())]
    targets = _objects(file)
    if not holders:
        return hdf5_attribute_types(file, rng)
    holder = rng.choice(holders)
    key = rng.choice([key for key, value in holder.attrs.items() if isinstance(value, h5py.Reference)])
    holder.attrs[key] = rng.choice(targets).ref if rng.random() < 0.8 else h5py.Reference()


def hdf5_link_cycle(file, rng: random.Random) -> None:
    import h5py

    groups = [obj for obj in _objects(file) if isinstance(obj, h5py.Group)] or [file]
    group = rng.choice(groups)
    kind = rng.choice(("soft_parent", "soft_self", "hard_parent", "external_missing", "external_self", "external_outside", "default_cycle"))
    name = f"loop_{rng.randrange(10**6)}"
    if kind == "soft_parent":
        group[name] = h5py.SoftLink(group.parent.name)
    elif kind == "soft_self":
        group[name] = h5py.SoftLink(f"{group.name.rstrip('/')}/{name}")
    elif kind == "hard_parent":
        group[name] = group.parent
    elif kind == "external_missing":
        group[name] = h5py.ExternalLink("no_such_file.h5", "/")
    elif kind == "external_self":
        group[name] = h5py.ExternalLink(os.path.basename(file.filename), "/")
    elif kind == "external_outside":
        group[name] = h5py.ExternalLink("/etc/hostname", "/")
    else:
        group.attrs["default"] = name
        group[name] = h5py.SoftLink(group.name)
        file.attrs["default"] = group.name.strip("/") or name


def hdf5_huge_shape(file, rng: random.Random) -> None:
    victim = rng.choice(_datasets(file))
    dtype = victim.dtype
    shape = rng.choice(((10**12,), (10**6, 10**6), (2**31, 4), (0, 5), (1, 2**40)))
    _replace(file, victim, shape=shape, dtype=dtype if dtype.kind in "iufc" else "f8", chunks=tuple(min(64, max(1, size)) for size in shape), maxshape=shape)


def hdf5_nan_values(file, rng: random.Random) -> None:
    numeric = [obj for obj in _datasets(file) if obj.dtype.kind == "f" and obj.size]
    if not numeric:
        return hdf5_attribute_types(file, rng)
    victim = rng.choice(numeric)
    values = victim[()]
    flat = np.asarray(values).reshape(-1)
    flat[rng.randrange(flat.size)] = rng.choice((np.nan, np.inf, -np.inf, 1e308))
    victim[...] = flat.reshape(np.shape(values))


def hdf5_attribute_types(file, rng: random.Random) -> None:
    objects = [obj for obj in _objects(file) if len(obj.attrs)] or [file]
    victim = rng.choice(objects)
    key = rng.choice(list(victim.attrs) or ["quantity"])
    victim.attrs[key] = rng.choice((np.arange(3), 7, b"\xff\xfe", np.array([1.5, np.nan]), "", np.array([b"a", b"b", b"c", b"d", b"e"]), np.zeros((2, 2))))


def hdf5_corrupt_json(file, rng: random.Random) -> None:
    targets = [(obj, key) for obj in [file, *_objects(file)] for key, value in obj.attrs.items() if isinstance(value, (str, bytes)) and str(value)[:1] in "[{" or key.startswith(("usid", "usidbridge"))]
    if not targets:
        return hdf5_attribute_types(file, rng)
    obj, key = rng.choice(targets)
    obj.attrs[key] = rng.choice(('{"unclosed": [', "[" * 100000, '{"a": 1e999}', "null", '"text"', '[["deep"]]', "usidbridge-json:" + "[" * 50000, "usidbridge-json:{bad"))


HDF5_MUTATIONS = {
    "hdf5_delete": hdf5_delete,
    "hdf5_retype": hdf5_retype,
    "hdf5_wrong_reference": hdf5_wrong_reference,
    "hdf5_link_cycle": hdf5_link_cycle,
    "hdf5_huge_shape": hdf5_huge_shape,
    "hdf5_nan_values": hdf5_nan_values,
    "hdf5_attribute_types": hdf5_attribute_types,
    "hdf5_corrupt_json": hdf5_corrupt_json,
}
TEXT_FORMATS = ("spec", "edf", "columns", "rosettasciio")


def mutations_for(seed: Seed) -> list[str]:
    names = list(BYTE_MUTATIONS)
    if seed.format in TEXT_FORMATS or seed.format == "tiff":
        names += list(TEXT_MUTATIONS)
    if seed.path.read_bytes()[:8] == HDF5_SIGNATURE:
        names += list(HDF5_MUTATIONS)
    return names


def make_mutant(seed: Seed, mutation: str, number: int, folder: Path) -> Path:
    """Write the mutant of `seed` made by `mutation` with random seed `number` into `folder`; returns its path."""
    rng = random.Random(f"{seed.path.name}:{mutation}:{number}")
    target = folder / f"mutant_{number}{seed.path.suffix}"
    if mutation in HDF5_MUTATIONS:
        import h5py

        shutil.copyfile(seed.path, target)
        try:
            with h5py.File(target, "r+") as file:
                HDF5_MUTATIONS[mutation](file, rng)
        except (OSError, KeyError, ValueError, TypeError, RuntimeError, IndexError):
            target.write_bytes(bit_flips(seed.path.read_bytes(), rng))
        return target
    data = seed.path.read_bytes()
    function = BYTE_MUTATIONS.get(mutation) or TEXT_MUTATIONS[mutation]
    target.write_bytes(function(data, rng))
    if seed.path.suffix.lower() == ".emi":  # TIA: the .ser beside the .emi
        for companion in seed.path.parent.glob(seed.path.stem + "_*.ser"):
            shutil.copyfile(companion, folder / (target.stem + companion.name[len(seed.path.stem) :]))
    return target


# ---------------------------------------------------------------- running and classifying


MODES = ("lazy", "eager")


def exercise(path: str, mode: str = "lazy") -> tuple[str, str]:
    """Read the file as a user would (detect, read lazily or eagerly, materialise, validate); (outcome, detail)."""
    import warnings

    import usidbridge as ub
    from usidbridge.errors import UsidBridgeError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for dataset in ub.read(path, lazy=mode == "lazy"):
                nbytes = dataset.dtype.itemsize * dataset.shape[0] * dataset.shape[1]
                if nbytes <= MATERIALISE_LIMIT:
                    dataset.load()
                else:
                    np.asarray(dataset.data[:1])
            with open(path, "rb") as handle:
                if handle.read(8) == HDF5_SIGNATURE:
                    ub.validate(path)
    except UsidBridgeError as error:
        if path not in str(error) and os.path.basename(path) not in str(error):
            return "uncaught", f"message without the file: {error}"
        return "clean", type(error).__name__
    except BaseException as error:  # the fuzzer's job: anything else escaping is what it reports
        frame = traceback.extract_tb(error.__traceback__)[-1]
        return "uncaught", f"{type(error).__name__}: {str(error)[:160]} at {Path(frame.filename).name}:{frame.lineno}"
    return "ok", ""


def _worker() -> None:
    """The worker process: read paths from stdin, answer outcomes on the original stdout; killed
    with the fuzzer, so that a run stopped outright leaves no worker reading on."""
    from usidbridge.isolation import _die_with_parent

    _die_with_parent(os.getppid())
    channel = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    for line in sys.stdin:
        mode, _, path = line.rstrip("\n").partition("\t")
        pickle.dump(exercise(path, mode), channel)
        channel.flush()


class Runner:
    """A worker process that reads mutants one after another; restarted after a crash or a hang."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.process: subprocess.Popen | None = None

    def _start(self) -> None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
        self.process = subprocess.Popen([sys.executable, "-c", "from fuzzing import _worker; _worker()"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=False, env=env)
        self.answers: queue.Queue = queue.Queue()
        process = self.process

        def listen() -> None:
            while True:
                try:
                    self.answers.put(pickle.load(process.stdout))
                except (EOFError, pickle.UnpicklingError, OSError):
                    self.answers.put(None)
                    return

        threading.Thread(target=listen, daemon=True).start()

    def run(self, path: Path, mode: str = "lazy") -> tuple[str, str]:
        if self.process is None or self.process.poll() is not None:
            self._start()
        self.process.stdin.write(f"{mode}\t{path}\n".encode())
        self.process.stdin.flush()
        try:
            answer = self.answers.get(timeout=self.timeout)
        except queue.Empty:
            self.stop()
            return "hang", f"no answer in {self.timeout:g} s"
        if answer is None:
            code = self.process.wait()
            self.process = None
            return "crash", f"worker exit code {code}"
        return answer

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None


def mutants(all_seeds: list[Seed], per_format: int, start: int = 0) -> Iterator[tuple[Seed, str, int]]:
    """`per_format` (seed, mutation, number) triples for each format, spread over its seeds and mutations."""
    by_format: dict[str, list[Seed]] = {}
    for seed in all_seeds:
        by_format.setdefault(seed.format, []).append(seed)
    for format_seeds in by_format.values():
        plan = [(seed, mutation) for seed in format_seeds for mutation in mutations_for(seed)]
        for number in range(start, start + per_format):
            seed, mutation = plan[number % len(plan)]
            yield seed, mutation, number


def fuzz(
    per_format: int, timeout: float = 20.0, start: int = 0, on_result: Callable | None = None, formats: Collection[str] = (), modes: Collection[str] = MODES, extra_seeds: Collection[Path] = ()
) -> dict[str, dict[str, int]]:
    """Run `per_format` mutants per format (of `formats` only, when given), each read in every mode, from
    the `seeds` (with the files of the `extra_seeds` folders); returns {"format mode": {outcome: count}}.

    Each result goes to ``on_result(seed, mutation, number, outcome, detail, path)`` while the mutant still exists.
    """
    table: dict[str, dict[str, int]] = {}
    runner = Runner(timeout)
    with tempfile.TemporaryDirectory(prefix="usidbridge-fuzz-") as folder_name:
        folder = Path(folder_name)
        (folder / "seeds").mkdir()
        all_seeds = [seed for seed in seeds(folder / "seeds", extra_seeds) if not formats or seed.format in formats]
        work = folder / "work"
        try:
            for seed, mutation, number in mutants(all_seeds, per_format, start):
                work.mkdir(exist_ok=True)
                path = make_mutant(seed, mutation, number, work)
                for mode in modes:
                    outcome, detail = runner.run(path, mode)
                    table.setdefault(f"{seed.format} {mode}", dict.fromkeys(OUTCOMES, 0))[outcome] += 1
                    if on_result:
                        on_result(seed, mutation, number, outcome, f"{mode}: {detail}" if detail else mode, path)
                shutil.rmtree(work, ignore_errors=True)
        finally:
            runner.stop()
    return table
