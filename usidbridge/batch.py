"""Many conversions in parallel on dask.distributed: a LocalCluster by default, or an existing scheduler.

Folders are walked with their sub-folders, and the output tree mirrors the input tree. Files that
no format reads (README.md, pictures, logs) are skipped, not failed; with ``skip_existing`` an
interrupted batch resumes where it stopped. Each file is converted by one worker (so each HDF5
output has one writer), in an isolated child process (`usidbridge.isolation`), so a file that
crashes or hangs the HDF5 library fails alone. A failed file is reported at the end and does not
stop the others.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from . import api, registry
from .errors import UnknownFormatError, UnreadableFileError, UsidBridgeError
from .isolation import isolated


@dataclass
class BatchResult:
    converted: list[tuple[str, str]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, list[dict[str, str]]]:
        """The report written by ``--report``: every file with its output, error or reason for skipping."""
        return {
            "converted": [{"source": source, "output": output} for source, output in self.converted],
            "failed": [{"source": source, "error": error} for source, error in self.failed],
            "skipped": [{"source": source, "reason": reason} for source, reason in self.skipped],
        }


def targets(inputs: Sequence[Path], to: str, out: Path, relative: Sequence[Path] | None = None) -> list[Path]:
    """Output paths: ``<folder>/<stem><extension>`` (the folder relative to the input root), or
    ``<name><extension>`` when two inputs of one folder share a stem."""
    extension = (registry.get(to).extensions or (f".{to}",))[0]
    folders = list(relative) if relative is not None else [Path()] * len(inputs)
    keys = [(folder, path.stem) for folder, path in zip(folders, inputs)]
    return [out / folder / (f"{path.name}{extension}" if keys.count((folder, path.stem)) > 1 else f"{path.stem}{extension}") for folder, path in zip(folders, inputs)]


def convert_one(source: str, target: str, to: str, overwrite: bool) -> tuple[bool, str]:
    """Runs on a worker: one conversion; (True, output) or (False, the one-line error).

    An expected failure is a result, not an exception, so the workers do not log tracebacks for it.
    """
    try:
        return True, str(isolated(api.convert, source, target, path=source, to=to, overwrite=overwrite))
    except UsidBridgeError as error:
        return False, str(error)
    except Exception as error:  # a bug: still one line here, the traceback is one `usidbridge --debug convert` away
        return False, f"{source}: unexpected {type(error).__name__}: {error}"


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


def batch(
    inputs: Sequence[str | os.PathLike[str]],
    to: str,
    out: str | os.PathLike[str],
    workers: int | None = None,
    scheduler: str | None = None,
    overwrite: bool = False,
    on_done: Callable[[int, int], None] | None = None,
    skip_existing: bool = False,
) -> BatchResult:
    """Convert `inputs` (files, folders walked with their sub-folders) to format `to` under `out` on a
    dask cluster; `on_done(done, total)` after each file. See the module text for what is skipped."""
    from dask.distributed import Client, LocalCluster, as_completed

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
    if not work:
        return result
    # silence_logs: dask's warnings about the machine (an unresponsive event loop under load, GC pauses) are not about the files
    cluster = None if scheduler else LocalCluster(
        n_workers=workers or os.cpu_count() or 1, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None, silence_logs=logging.ERROR
    )
    client = Client(scheduler or cluster)
    try:
        for _source, target in work:
            target.parent.mkdir(parents=True, exist_ok=True)
        futures = {client.submit(convert_one, str(source), str(target), to, overwrite, pure=False): str(source) for source, target in work}
        for done, future in enumerate(as_completed(futures), start=1):
            source = futures[future]
            try:
                ok, text = future.result()
            except Exception as error:  # the worker itself died
                ok, text = False, f"{source}: the worker failed ({type(error).__name__}: {error})"
            (result.converted if ok else result.failed).append((source, text))
            if on_done:
                on_done(done, len(futures))
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    result.converted.sort()
    result.failed.sort()
    return result
