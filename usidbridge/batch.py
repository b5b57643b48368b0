"""Many conversions in parallel: long-lived local worker processes by default, or an existing
dask.distributed scheduler.

Folders are walked with their sub-folders, and the output tree mirrors the input tree. Files that
no format reads (README.md, pictures, logs) are skipped, not failed; with ``skip_existing`` an
interrupted batch resumes where it stopped. Each file is converted by one worker (so each HDF5
output has one writer) in a child process (`usidbridge.isolation.Worker`), so a file that crashes
or hangs a C library fails alone: that worker is replaced and the batch goes on. Local workers
live for the whole batch (a process per file would cost its 0.4 s of imports per file); on a
dask scheduler each file gets a fresh child. A failed file is reported at the end.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import api, registry
from .errors import UnknownFormatError, UnreadableFileError, UsidBridgeError
from .isolation import Worker, isolated

CALLS_PER_WORKER = 1000  # a worker is renewed after this many files, so that what libraries leak stays bounded


@dataclass
class BatchResult:
    converted: list[tuple[str, str]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)  # per source, the wall time of its conversion
    details: dict[str, dict[str, Any]] = field(default_factory=dict)  # per converted source: the datasets written, their validation
    elapsed: float = 0.0

    @property
    def files_per_second(self) -> float:
        done = len(self.converted) + len(self.failed)
        return done / self.elapsed if self.elapsed > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        """The report written by ``--report``: every file with its output, error or reason for
        skipping, the seconds each conversion took, and a summary with the throughput."""
        return {
            "converted": [{"source": source, "output": output, **self.details.get(source, {}), "seconds": round(self.seconds.get(source, 0.0), 4)} for source, output in self.converted],
            "failed": [{"source": source, "error": error, "seconds": round(self.seconds.get(source, 0.0), 4)} for source, error in self.failed],
            "skipped": [{"source": source, "reason": reason} for source, reason in self.skipped],
            "summary": {"converted": len(self.converted), "failed": len(self.failed), "skipped": len(self.skipped),
                        "seconds": round(self.elapsed, 3), "files_per_second": round(self.files_per_second, 2)},
        }


def targets(inputs: Sequence[Path], to: str, out: Path, relative: Sequence[Path] | None = None) -> list[Path]:
    """Output paths: ``<folder>/<stem><extension>`` (the folder relative to the input root), or
    ``<name><extension>`` when two inputs of one folder share a stem."""
    extension = (registry.get(to).extensions or (f".{to}",))[0]
    folders = list(relative) if relative is not None else [Path()] * len(inputs)
    stems = Counter((folder, path.stem) for folder, path in zip(folders, inputs))
    return [out / folder / (f"{path.name}{extension}" if stems[(folder, path.stem)] > 1 else f"{path.stem}{extension}") for folder, path in zip(folders, inputs)]


@dataclass(frozen=True)
class Job:
    """What every file of a batch is converted with."""

    to: str
    overwrite: bool = False
    read_options: dict[str, Any] = field(default_factory=dict)
    write_options: dict[str, Any] = field(default_factory=dict)
    check: bool = False  # validate each h5USID output, for the report


def convert_file(source: str, target: str, job: Job) -> dict[str, Any]:
    """Runs in a worker's child: one conversion, into a folder made for it; returns the report
    entry (the output, the datasets written and, with `job.check`, whether it is USID-compliant).
    It is `api.convert`, keeping the datasets for the report."""
    api.refuse_same_file(source, target)
    datasets = api.read(source, lazy=True, **job.read_options)
    Path(target).parent.mkdir(parents=True, exist_ok=True)
    api.write(datasets, target, job.to, overwrite=job.overwrite, **job.write_options)
    entry: dict[str, Any] = {"output": target, "datasets": [dataset.name for dataset in datasets]}
    if job.check and registry.get(job.to).name == "h5usid":
        from .rules import validate

        entry["usid_compliant"] = validate(target).ok
    return entry


def convert_one(source: str, target: str, job: Job) -> tuple[bool, Any, float]:
    """Runs on a dask worker: one conversion; (True, its report entry) or (False, the one-line error), and its seconds.

    An expected failure is a result, not an exception, so the workers do not log tracebacks for it.
    """
    started = time.perf_counter()
    try:
        return True, isolated(convert_file, source, target, job, path=source), time.perf_counter() - started
    except UsidBridgeError as error:
        return False, str(error), time.perf_counter() - started
    except Exception as error:  # a bug: still one line here, the traceback is one `usidbridge --debug convert` away
        return False, f"{source}: unexpected {type(error).__name__}: {error}", time.perf_counter() - started


def expand(inputs: Sequence[str | os.PathLike[str]]) -> list[tuple[Path, Path]]:
    """Files as given, folders as every file under them (hidden ones aside), each with the folder of its output relative to `out`."""
    files: list[tuple[Path, Path]] = []
    for item in map(Path, inputs):
        if item.is_dir():
            found = sorted(path for path in item.rglob("*") if path.is_file() and not any(part.startswith(".") for part in path.relative_to(item).parts))
            files += [(path, path.parent.relative_to(item)) for path in found]
        else:
            files.append((item, Path()))
    return files


def readable(path: Path) -> str | None:
    """Why no format reads `path` (then it is skipped), or None when one does."""
    try:
        registry.detect(path)
    except UnknownFormatError:
        return "no format reads this file"
    except UnreadableFileError as error:
        return error.message
    return None


def _run_local(work: list[tuple[Path, Path]], job: Job, workers: int, report: Callable[[str, bool, Any, float], None]) -> None:
    """Convert `work` on `workers` long-lived child processes, one thread feeding each."""
    jobs: queue.Queue = queue.Queue()
    for item in work:
        jobs.put(item)

    def feed() -> None:
        worker, calls = Worker(), 0
        try:
            while True:
                try:
                    source, target = jobs.get_nowait()
                except queue.Empty:
                    return
                if not worker.alive or calls >= CALLS_PER_WORKER:
                    worker.close()
                    worker, calls = Worker(), 0
                started = time.perf_counter()
                try:
                    ok, outcome = True, worker.call(convert_file, str(source), str(target), job, path=str(source))
                except UsidBridgeError as error:
                    ok, outcome = False, str(error)
                except RuntimeError as error:  # a bug in usidbridge, reported by the child: one line, the traceback is one `usidbridge --debug convert` away
                    ok, outcome = False, f"{source}: {error}"
                calls += 1
                report(str(source), ok, outcome, time.perf_counter() - started)
        finally:
            worker.close()

    threads = [threading.Thread(target=feed, daemon=True) for _ in range(max(1, min(workers, len(work))))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def _run_dask(work: list[tuple[Path, Path]], job: Job, scheduler: str, report: Callable[[str, bool, Any, float], None]) -> None:
    """Convert `work` on an existing dask.distributed scheduler, a fresh child per file."""
    from dask.distributed import Client, as_completed

    client = Client(scheduler)
    try:
        futures = {client.submit(convert_one, str(source), str(target), job, pure=False): str(source) for source, target in work}
        for future in as_completed(futures):
            source = futures[future]
            try:
                ok, text, seconds = future.result()
            except Exception as error:  # the worker itself died
                ok, text, seconds = False, f"{source}: the worker failed ({type(error).__name__}: {error})", 0.0
            report(source, ok, text, seconds)
    finally:
        client.close()


def _remove_empty_folders(out: Path, targets: Sequence[Path]) -> None:
    """Remove the mirrored folders that failed files left empty (deepest first, never `out` itself)."""
    folders = {parent for target in targets for parent in target.parents if parent != out and out in parent.parents}
    for folder in sorted(folders, key=lambda folder: len(folder.parts), reverse=True):
        try:
            folder.rmdir()
        except OSError:  # not empty: other files went there, or it was there before
            pass


def batch(
    inputs: Sequence[str | os.PathLike[str]],
    to: str,
    out: str | os.PathLike[str],
    workers: int | None = None,
    scheduler: str | None = None,
    overwrite: bool = False,
    on_done: Callable[[int, int], None] | None = None,
    skip_existing: bool = False,
    read_options: dict[str, Any] | None = None,
    write_options: dict[str, Any] | None = None,
    check: bool = False,
) -> BatchResult:
    """Convert `inputs` (files, folders walked with their sub-folders) to format `to` under `out`,
    on `workers` local processes (default: one per core) or on the dask `scheduler`, with the
    reader's `read_options` and the writer's `write_options`; `on_done(done, total)` after each
    file; `check` validates each h5USID output for the report. See the module text for what is skipped."""
    started = time.perf_counter()
    found = expand(inputs)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    registry.get(to)
    result = BatchResult()
    work = []
    for (source, _folder), target in zip(found, targets([path for path, _ in found], to, out, [folder for _, folder in found])):
        reason = readable(source)
        if reason is None and skip_existing and target.exists():
            reason = f"the output {target} exists"
        if reason is not None:
            result.skipped.append((str(source), reason))
        else:
            work.append((source, target))
    job = Job(registry.get(to).name, overwrite, dict(read_options or {}), dict(write_options or {}), check)
    lock = threading.Lock()

    def report(source: str, ok: bool, outcome: Any, seconds: float) -> None:
        with lock:
            if ok:
                result.converted.append((source, outcome["output"]))
                result.details[source] = {key: value for key, value in outcome.items() if key != "output"}
            else:
                result.failed.append((source, outcome))
            result.seconds[source] = seconds
            if on_done:
                on_done(len(result.converted) + len(result.failed), len(work))

    if work and scheduler:
        _run_dask(work, job, scheduler, report)
    elif work:
        _run_local(work, job, workers or os.cpu_count() or 1, report)
    _remove_empty_folders(out, [target for source, target in work if str(source) in dict(result.failed)])
    result.converted.sort()
    result.failed.sort()
    result.elapsed = time.perf_counter() - started
    return result
