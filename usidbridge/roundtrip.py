"""Round trips: what survives Dataset → format → Dataset, feature by feature.

`roundtrip(dataset, via="netcdf")` writes the dataset in the format (in a temporary folder), reads
it back, compares every feature, and applies the Main rules to the h5USID re-written from what came
back. Each feature is **kept** (equal, carried natively), **encoded** (equal, through an explicit
encoding the format's profile declares), **refused** (the writer said no, with the way out) or
**lost** (different). A loss is a bug unless the format's profile declares the feature "loses".
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from . import api, registry
from .errors import UsidBridgeError
from .codec import plain
from .model import Dataset
from .rules import validate

Status = Literal["kept", "encoded", "refused", "lost"]
FEATURES = ("data", "dtype", "dims", "quantity", "non_grid", "compound", "metadata", "rules")
FORMAT_NAMESPACES = frozenset({"h5usid", "nexus", "netcdf", "spec", "edf", "tiff", "hyperspy"})


@dataclass(frozen=True)
class FeatureResult:
    status: Status
    detail: str = ""
    declared: bool = True  # False for a loss the profile does not declare: a bug


@dataclass
class FidelityReport:
    """What one format kept of one dataset."""

    format: str
    dataset: str
    features: dict[str, FeatureResult] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when every loss is one the format's profile declares."""
        return all(result.declared for result in self.features.values())

    def undeclared_losses(self) -> dict[str, str]:
        return {name: result.detail for name, result in self.features.items() if not result.declared}

    def to_dict(self) -> dict[str, Any]:
        return {"format": self.format, "dataset": self.dataset, "ok": self.ok, "features": {name: asdict(result) for name, result in self.features.items()}}


def _same_dtype(left: np.dtype, right: np.dtype) -> bool:
    return left == right or left.newbyteorder("=") == right.newbyteorder("=")


def _same_data(original: Dataset, back: Dataset, exact_floats: bool) -> bool:
    left, right = np.asarray(original.data), np.asarray(back.data)
    if left.shape != right.shape:
        return False
    if not _same_dtype(left.dtype, right.dtype):
        right = right.astype(left.dtype)
    if left.dtype.fields:
        return all(_same_array(left[name], right[name], exact_floats) for name in left.dtype.names)
    return _same_array(left, right, exact_floats)


def _same_array(left: np.ndarray, right: np.ndarray, exact_floats: bool) -> bool:
    if left.dtype.kind in "fc" and exact_floats:
        return np.ascontiguousarray(left).astype(left.dtype.newbyteorder("=")).tobytes() == np.ascontiguousarray(right).astype(left.dtype.newbyteorder("=")).tobytes()
    if left.dtype.kind in "fc":
        return bool(np.allclose(left, right, equal_nan=True))
    return bool(np.array_equal(left, right))


def _user_metadata(metadata: dict[str, Any]) -> dict[str, Any]:
    """The metadata a user put there, without the namespaces formats keep for their own headers."""
    return plain({key: value for key, value in metadata.items() if key not in FORMAT_NAMESPACES})


def _compare(original: Dataset, back: Dataset, profile: registry.Profile) -> dict[str, tuple[bool, str, tuple[str, ...]]]:
    """feature → (same, detail, the profile capabilities that govern it)."""
    used = registry.features_of([original])
    same_dtype = _same_dtype(original.dtype, back.dtype)
    values = tuple(capability for capability in ("complex", "compound") if capability in used)
    results: dict[str, tuple[bool, str, tuple[str, ...]]] = {
        "data": (_same_data(original, back, profile.exact_floats), "numbers", values + (() if same_dtype else ("dtypes",))),
        "dtype": (same_dtype, f"{original.dtype} → {back.dtype}", values + ("dtypes",)),
        "quantity": (
            (original.quantity, original.units) == (back.quantity, back.units),
            f"{original.quantity!r} ({original.units!r}) → {back.quantity!r} ({back.units!r})",
            ("units",) if original.quantity == back.quantity else (),
        ),
    }
    if original.is_grid and back.is_grid:
        differing = [f"{a!r} → {b!r}" for a, b in zip(original.dims, back.dims) if a != b]
        same = len(original.dims) == len(back.dims) and not differing and original.pos.labels == back.pos.labels
        detail = "; ".join(differing) or f"{[d.name for d in original.dims]} → {[d.name for d in back.dims]}"
        results["dims"] = (same, detail, ("dims", "non_uniform") if "non_uniform" in used else ("dims",))
    else:
        results["dims"] = (original.is_grid == back.is_grid, "grid → non-grid" if original.is_grid else "non-grid → grid", ("non_grid",))
    if not original.pos.is_grid:
        results["non_grid"] = (original.pos.same_as(back.pos), "position table", ("non_grid",))
    if original.dtype.fields:
        results["compound"] = (back.dtype.names == original.dtype.names, f"fields {original.dtype.names} → {back.dtype.names}", ("compound",))
    mine, theirs = _user_metadata(original.metadata), _user_metadata(back.metadata)
    missing = sorted(set(mine) - set(theirs)) + sorted(key for key in set(mine) & set(theirs) if mine[key] != theirs[key])
    results["metadata"] = (not missing, f"keys {missing} differ" if missing else f"{len(mine)} keys", ("nested_metadata",))
    return results


def roundtrip_one(dataset: Dataset, format: registry.Format, folder: Path, stem: str = "roundtrip") -> FidelityReport:
    """One dataset through one format; the file written is ``folder/<stem><extension>``."""
    report = FidelityReport(format.name, dataset.quantity)
    support = format.profile.support()
    target = folder / f"{stem}{format.extensions[0] if format.extensions else ''}"
    try:
        api.write(dataset, target, format.name, overwrite=True)
    except UsidBridgeError as error:
        report.features = {name: FeatureResult("refused", error.message) for name in FEATURES}
        return report
    read = api.read(target, format.name)
    same_shape = [candidate for candidate in read if candidate.shape == dataset.shape]
    back = next((candidate for candidate in read if candidate.quantity == dataset.quantity), (same_shape or read)[0])
    for name, (same, detail, capabilities) in _compare(dataset, back, format.profile).items():
        declared = {support[capability] for capability in capabilities}
        if same:
            report.features[name] = FeatureResult("encoded" if "encodes" in declared else "kept", detail)
        else:
            report.features[name] = FeatureResult("lost", detail, declared="loses" in declared)
    rewritten = api.write(back, folder / f".{stem}.{format.name}.rewritten.h5", "h5usid", overwrite=True)
    rewritten_report = validate(rewritten)
    rewritten.unlink()
    rules = rewritten_report
    errors = [f"{finding.rule}: {finding.message}" for finding in rules.errors]
    report.features["rules"] = FeatureResult("kept" if rules.ok else "lost", "; ".join(errors) or "USID-compliant", declared=rules.ok)
    return report


def roundtrip(
    source: Dataset | str | os.PathLike[str],
    via: str = "all",
    keep_in: str | os.PathLike[str] | None = None,
    on_format: Callable[[str], None] | None = None,
) -> list[FidelityReport]:
    """Round trips of a dataset (or of every dataset of a file) through one format or every writable one.

    The files written go to a temporary folder, or stay in `keep_in` (one per dataset and format).
    """
    datasets = [source] if isinstance(source, Dataset) else api.read(source)
    formats = [format for format in registry.formats() if format.can_write and format.can_read and format.installed] if via == "all" else [registry.get(via)]
    reports = []
    with contextlib.ExitStack() as stack:
        folder = Path(keep_in) if keep_in is not None else Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="usidbridge-roundtrip-")))
        folder.mkdir(parents=True, exist_ok=True)
        for format in formats:
            if on_format:
                on_format(format.name)
            for number, dataset in enumerate(datasets):
                reports.append(roundtrip_one(dataset, format, folder, f"dataset_{number:03d}"))
    return reports
