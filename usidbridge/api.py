"""`read`, `write` and `convert`: every conversion is reader → Dataset → writer, through the registry."""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import registry
from .errors import IS_A_FOLDER, ModelError, UnknownFormatError, UnreadableFileError
from .hdf import has_hdf5_signature, sniffing, touch_structure
from .isolation import DEFAULT_TIMEOUT, isolated, probed
from .model import Dataset
from .output import atomic_output, failed_write

PathLike = str | os.PathLike[str]
SOURCE_SEPARATOR = "::"


def _is_hdf5(path: Path) -> bool:
    with open(path, "rb") as handle:
        return has_hdf5_signature(handle.read(2056))


def _input_path(path: PathLike) -> Path:
    path = Path(path)
    if not path.exists():
        raise UnreadableFileError("no such file", path)
    if path.is_dir():
        raise UnreadableFileError(IS_A_FOLDER, path)
    return path


def internal_path(dataset: Dataset) -> str:
    """Where the dataset lives inside its file (``/Measurement_000/Channel_000/Raw_Data``), else its name."""
    source = dataset.source or ""
    return source.rpartition(SOURCE_SEPARATOR)[2] if SOURCE_SEPARATOR in source else dataset.name


def select(datasets: Sequence[Dataset], wanted: str, path: PathLike) -> list[Dataset]:
    """The datasets whose internal path, name or quantity is `wanted` (or matches it as a glob)."""

    def matches(item: Dataset) -> bool:
        keys = (internal_path(item), internal_path(item).lstrip("/"), item.name, item.quantity)
        return wanted in keys or any(fnmatch.fnmatchcase(key, wanted) for key in keys)

    chosen = [item for item in datasets if matches(item)]
    if not chosen:
        candidates = "; ".join(f"{internal_path(item)} ({item.quantity})" for item in datasets[:20])
        more = f"; … {len(datasets) - 20} more" if len(datasets) > 20 else ""
        raise UnreadableFileError(f"no dataset matches {wanted!r}; the file holds: {candidates}{more}", path)
    return chosen


NATIVE_DECODING_RATE = 10 * 2**20  # bytes/s: the slowest a native decoder may go before its child counts as hung


def read_here(path: str, format: str, options: dict[str, Any]) -> list[Dataset]:
    """Read a file whole with the named format's reader, in this process: what `read` runs in a child for a
    file whose reader `decodes_natively` (its data comes back in memory, as a lazy read would decode it whole)."""
    return registry.get(format).read(Path(path), lazy=False, **options)


def read(path: PathLike, format: str | None = None, *, lazy: bool = False, dataset: str | None = None, isolate: bool = True, **options: Any) -> list[Dataset]:
    """Read every dataset of a file; the format is sniffed from the content unless named.

    With ``lazy=True`` the data stays in the file (h5py, dask or memory maps) and only the
    ancillary information is read. `dataset` keeps those whose internal path, name or quantity
    equals it or matches it as a glob (``"*/Channel_001/*"``); only those are read. `options` are
    the reader's declared options (`Format.read_options`); any other is refused.

    An HDF5 container's structure (every object header, link and attribute) is first walked in a
    long-lived child process (`usidbridge.isolation.probed`), so that a damaged file on which
    libhdf5 crashes or loops ends in an `IsolatedFailureError` naming it. A file whose reader decodes
    it with compiled code that trusts its bytes (a Bruker .bcf) is read whole in a child process
    (`Format.decodes_natively`), eagerly. ``isolate=False`` skips both.
    """
    path = _input_path(path)
    if isolate and _is_hdf5(path):
        probed(touch_structure, str(path), path=path)
    with sniffing():  # the file the sniffs open is the one the reader reads
        return _read_detected(path, format, lazy, dataset, isolate, options)


def _read_detected(path: Path, format: str | None, lazy: bool, dataset: str | None, isolate: bool, options: dict[str, Any]) -> list[Dataset]:
    reader = registry.get(format) if format else registry.detect(path)
    if isolate and reader.structure_probe is not None and reader.installed:
        probed(reader.structure_probe, str(path), path=path)
    if format:
        registry.log.info("%s: read as %s: asked for (--from)", path, reader.name)
    if not reader.can_read:
        raise UnknownFormatError(f"the {reader.name} format cannot be read", path)
    reader.require()
    reader.check_options("read", options, path)
    if isolate and reader.decodes_natively(path, options):
        datasets = isolated(read_here, str(path), reader.name, options, path=path, timeout=DEFAULT_TIMEOUT + path.stat().st_size / NATIVE_DECODING_RATE)
    else:
        datasets = reader.read(path, lazy=lazy or dataset is not None, **options)
    for item in datasets:
        item.source = item.source or str(path)
    if not datasets:
        raise UnreadableFileError(f"no datasets found in this {reader.name} file", path)
    if dataset is not None:
        datasets = select(datasets, dataset, path)
        if not lazy:
            datasets = [item.load() for item in datasets]
    return datasets


def write(datasets: Dataset | Sequence[Dataset], path: PathLike, format: str | None = None, *, overwrite: bool = False, **options: Any) -> Path:
    """Write datasets to `path` in `format` (default: from the extension); returns the path.

    The file is written under a temporary name and renamed when complete, so a failure leaves
    nothing behind. Datasets that break a USID rule, and features the format cannot carry, are
    refused with an error before anything is written.
    """
    datasets = [datasets] if isinstance(datasets, Dataset) else list(datasets)
    path = Path(path)
    if path.is_dir():
        raise UnreadableFileError(f"{IS_A_FOLDER}; give the output a file name", path)
    writer = registry.get(format) if format else registry.for_extension(path)
    registry.log.info("%s: written as %s: %s", path, writer.name, "asked for (--to)" if format else f"from the extension {path.suffix}")
    if not writer.can_write:
        raise UnknownFormatError(f"the {writer.name} format is read-only; write one of: {registry.writable_names()}", path)
    writer.require()
    writer.check_options("write", options, path)
    if not datasets:
        raise ModelError("nothing to write: no datasets given")
    for item in datasets:
        errors = [finding for finding in item.validate() if finding.severity == "error"]
        if errors:
            raise ModelError(f"dataset {item.name!r} breaks USID rule {errors[0].rule}: {errors[0].message}")
    writer.check_writable(datasets)
    with atomic_output(path, overwrite=overwrite) as temporary, failed_write(temporary):
        writer.write(datasets, temporary, **options)
    return path


def refuse_same_file(source: PathLike, target: PathLike) -> None:
    """A conversion must not write over its input."""
    if Path(source).resolve() == Path(target).resolve():
        raise UnreadableFileError("the output is the input file; choose another output name", target)


def convert(
    source: PathLike,
    target: PathLike,
    *,
    to: str | None = None,
    from_: str | None = None,
    dataset: str | None = None,
    lazy: bool = True,
    overwrite: bool = False,
    isolate: bool = True,
    read_options: dict[str, Any] | None = None,
    **write_options: Any,
) -> Path:
    """Read `source` and write it to `target`; lazy by default, so memory stays bounded.

    `read_options` go to the reader (e.g. ``{"frames": "position"}``), other keywords to the writer.
    """
    refuse_same_file(source, target)
    datasets = read(source, from_, lazy=lazy, dataset=dataset, isolate=isolate, **(read_options or {}))
    return write(datasets, target, to, overwrite=overwrite, **write_options)
