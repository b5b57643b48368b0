"""Many conversions in parallel on dask.distributed: a LocalCluster by default, or an existing scheduler.

Each file is converted by one worker (so each HDF5 output has one writer), in an isolated child
process (`usidbridge.isolation`), so a file that crashes or hangs the HDF5 library fails alone. A
failed file is reported at the end and does not stop the others.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from . import api, registry
from .errors import UsidBridgeError
from .isolation import isolated


@dataclass
class BatchResult:
    converted: list[tuple[str, str]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)


def targets(inputs: Sequence[Path], to: str, out: Path) -> list[Path]:
    """Output paths: ``<stem><extension>``, or ``<name><extension>`` when two inputs share a stem."""
    extension = (registry.get(to).extensions or (f".{to}",))[0]
    stems = [path.stem for path in inputs]
    return [out / (f"{path.name}{extension}" if stems.count(path.stem) > 1 else f"{path.stem}{extension}") for path in inputs]


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


def expand(inputs: Sequence[str | os.PathLike[str]]) -> list[Path]:
    """Files as given, folders as the files inside them."""
    files: list[Path] = []
    for item in map(Path, inputs):
        files += sorted(path for path in item.iterdir() if path.is_file()) if item.is_dir() else [item]
    return files


def batch(
    inputs: Sequence[str | os.PathLike[str]],
    to: str,
    out: str | os.PathLike[str],
    workers: int | None = None,
    scheduler: str | None = None,
    overwrite: bool = False,
    on_done: Callable[[int, int], None] | None = None,
) -> BatchResult:
    """Convert `inputs` to format `to` in folder `out` on a dask cluster; `on_done(done, total)` after each file."""
    from dask.distributed import Client, LocalCluster, as_completed

    files = expand(inputs)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    registry.get(to)
    result = BatchResult()
    cluster = None if scheduler else LocalCluster(n_workers=workers or os.cpu_count() or 1, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None)
    client = Client(scheduler or cluster)
    try:
        futures = {client.submit(convert_one, str(source), str(target), to, overwrite, pure=False): str(source) for source, target in zip(files, targets(files, to, out))}
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
