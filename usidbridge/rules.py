"""The USID rule catalog and the validator.

`validate(path_or_h5)` finds every Main candidate (a dataset carrying any of the four ancillary
reference attributes) and applies the rules below to it. It reads attributes and the ancillary
tables, never the Main data, and it turns anything unexpected in an HDF5 file into a finding
rather than an exception. Rule ids are stable: add, never renumber. The deliberate differences
from pyUSID's ``check_if_main`` are listed in docs/rules.md.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field, replace
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import h5py
import numpy as np

from .attributes import string_attr, string_list_attr
from .errors import UsidBridgeError
from .hdf import DAMAGED_HDF5, dereference, marked, open_hdf5, unbacked_size
from .layout import check_dtype, grid_layout

if TYPE_CHECKING:
    from .model import Dataset

Severity = Literal["error", "warning", "info"]


@dataclass(frozen=True)
class Rule:
    id: str
    severity: str
    text: str


RULES = {
    rule.id: rule
    for rule in [
        Rule("M01", "error", "a Main candidate is a 2-D dataset"),
        Rule("M02", "error", "`quantity` attribute: a non-empty string"),
        Rule("M03", "error", "`units` attribute: a string (empty allowed for dimensionless)"),
        Rule("M04", "error", "Position_Indices, Position_Values, Spectroscopic_Indices, Spectroscopic_Values attributes are object references"),
        Rule("M05", "error", "each reference resolves to a dataset in the same file"),
        Rule("M06", "error", "the dtype is numeric, complex, or compound of those"),
        Rule("A01", "error", "Position_* are 2-D, shape (n_positions, U), the same shape as each other"),
        Rule("A02", "error", "Spectroscopic_* are 2-D, shape (V, n_spectral), the same shape as each other"),
        Rule("A03", "error / warning", "indices are unsigned integers (error for float; warning for signed or unsigned other than uint32)"),
        Rule("A04", "error", "values are real numbers"),
        Rule("A05", "error", "`labels` and `units` on each ancillary dataset: lists of strings, one per dimension; Indices and Values agree"),
        Rule("A06", "error", "labels are unique within Position and within Spectroscopic"),
        Rule("A07", "error", "each index dimension counts 0, 1, 2, ... with no gaps"),
        Rule("A08", "info", "the indices form a full grid; otherwise the dataset is non-grid and has no N-D form"),
        Rule("A09", "error", "values are a function of indices: one index, one value, per dimension"),
        Rule("B01", "warning", "book-keeping attributes on Main datasets and their groups: timestamp or time_stamp, machine_id, platform, a version"),
        Rule("G01", "warning", "group names: Measurement_NNN, Channel_NNN, results groups Source-Tool_NNN carrying source_000"),
        Rule("C01", "info", "chunking does not split one position's spectrum"),
        Rule("F01", "error", "the file holds at least one Main dataset"),
        Rule("F02", "error", "every HDF5 object and attribute of a Main candidate can be read"),
    ]
}

ANCILLARY_NAMES = ("Position_Indices", "Position_Values", "Spectroscopic_Indices", "Spectroscopic_Values")
TIMESTAMP = re.compile(r"^\d{4}_\d{2}_\d{2}-\d{2}_\d{2}_\d{2}$")
CHANNEL = re.compile(r"^Channel_\d{3}$")
MEASUREMENT = re.compile(r"^Measurement_\d{3}$")
RESULTS = re.compile(r"^.+-.+_\d{3}$")


@dataclass(frozen=True)
class Finding:
    """One broken (or noteworthy) rule at one HDF5 path, with a message a person can act on."""

    rule: str
    severity: Severity
    path: str
    message: str


@dataclass
class Report:
    """The findings for one file; `ok` when it has a Main dataset and no error."""

    file: str
    findings: list[Finding] = field(default_factory=list)
    main_datasets: list[str] = field(default_factory=list)

    @property
    def errors(self) -> list[Finding]:
        return [finding for finding in self.findings if finding.severity == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [finding for finding in self.findings if finding.severity == "warning"]

    @property
    def ok(self) -> bool:
        return bool(self.main_datasets) and not self.errors

    def ok_strictly(self) -> bool:
        """Compliant and free of warnings too (``validate --strict``)."""
        return self.ok and not self.warnings

    def rule_ids(self) -> set[str]:
        return {finding.rule for finding in self.findings}

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "compliant": self.ok,
            "main_datasets": self.main_datasets,
            "findings": [asdict(finding) for finding in self.findings],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def to_text(self) -> str:
        verdict = "USID-compliant" if self.ok else "NOT USID-compliant"
        lines = [f"{self.file}: {verdict} ({len(self.main_datasets)} Main dataset(s), {len(self.errors)} error(s), {len(self.warnings)} warning(s))"]
        lines += [f"  {f.rule} {f.severity:<7} {f.path}: {f.message}" for f in self.findings]
        return "\n".join(lines)


class _Checker:
    """Collects the findings for one Main candidate."""

    def __init__(self, main: h5py.Dataset) -> None:
        self.main = main
        self.findings: list[Finding] = []

    def add(self, rule: str, message: str, severity: Severity = "error", path: str | None = None) -> None:
        self.findings.append(Finding(rule, severity, path or self.main.name, message))

    def run(self) -> list[Finding]:
        main = self.main
        two_d = main.ndim == 2
        if not two_d:
            self.add("M01", f"Main data must be 2-D (positions, spectral points), this one has shape {main.shape}")
        self.check_string("quantity", "M02", allow_empty=False)
        self.check_string("units", "M03", allow_empty=True)
        problem = check_dtype(main.dtype)
        if problem:
            self.add("M06", problem)
        tables = self.resolve_references()
        if two_d:
            positions, spectral = main.shape
            if tables.keys() >= {"Position_Indices", "Position_Values"}:
                self.check_ancillary("Position", tables["Position_Indices"], tables["Position_Values"], positions)
            if tables.keys() >= {"Spectroscopic_Indices", "Spectroscopic_Values"}:
                self.check_ancillary("Spectroscopic", tables["Spectroscopic_Indices"], tables["Spectroscopic_Values"], spectral)
            if main.chunks and main.chunks[1] < spectral:
                self.add("C01", f"chunks {main.chunks} split each spectrum of {spectral} points; whole-position chunks read faster", "info")
        self.check_bookkeeping()
        self.check_groups()
        return self.findings

    def check_string(self, name: str, rule: str, allow_empty: bool) -> None:
        if name not in self.main.attrs:
            self.add(rule, f"the {name!r} attribute is missing")
            return
        value = string_attr(self.main, name)
        if value is None:
            self.add(rule, f"the {name!r} attribute must be a string, found {self.main.attrs[name]!r}")
        elif not value and not allow_empty:
            self.add(rule, f"the {name!r} attribute is empty; say what is measured, e.g. 'Current'")

    def resolve_references(self) -> dict[str, h5py.Dataset]:
        tables = {}
        for name in ANCILLARY_NAMES:
            if name not in self.main.attrs:
                self.add("M04", f"the {name!r} attribute (a reference to the ancillary dataset) is missing")
                continue
            reference = self.main.attrs[name]
            if not isinstance(reference, h5py.Reference):
                self.add("M04", f"the {name!r} attribute must be an object reference, found {type(reference).__name__} {reference!r:.60}")
                continue
            target = dereference(self.main.file, reference)
            if target is None:
                self.add("M05", f"the {name!r} reference is null or dangling: it points to nothing in this file")
            elif not isinstance(target, h5py.Dataset):
                self.add("M05", f"the {name!r} reference points to the group {target.name}, not a dataset")
            else:
                tables[name] = target
        return tables

    def check_ancillary(self, kind: str, indices: h5py.Dataset, values: h5py.Dataset, expected: int) -> None:
        rule_shape = "A01" if kind == "Position" else "A02"
        axis = 0 if kind == "Position" else 1
        expected_form = "(n_positions, U)" if kind == "Position" else "(V, n_spectral)"
        if indices.ndim != 2 or values.ndim != 2 or indices.shape != values.shape or indices.shape[axis] != expected:
            self.add(
                rule_shape,
                f"{kind}_Indices {indices.shape} and {kind}_Values {values.shape} must both be {expected_form} "
                f"with {expected} {'rows' if axis == 0 else 'columns'} to match the Main data",
                path=indices.name,
            )
            return
        readable = True
        if indices.dtype.kind == "f":
            self.add("A03", f"indices are {indices.dtype}; they must be unsigned integers (uint32)", path=indices.name)
            readable = False
        elif indices.dtype.kind == "i":
            self.add("A03", f"indices are signed ({indices.dtype}); USID uses uint32", "warning", indices.name)
        elif indices.dtype.kind == "u" and indices.dtype.itemsize != 4:
            self.add("A03", f"indices are {indices.dtype}; USID uses uint32", "warning", indices.name)
        elif indices.dtype.kind != "u":
            self.add("A03", f"indices are {indices.dtype}; they must be unsigned integers (uint32)", path=indices.name)
            readable = False
        if values.dtype.kind not in "iuf":
            self.add("A04", f"values are {values.dtype}; they must be real numbers", path=values.name)
            readable = False
        dims = values.shape[1 - axis]
        labels = self.check_labels(kind, indices, values, dims)
        if labels is not None and len(set(labels)) != len(labels):
            repeated = sorted({label for label in labels if labels.count(label) > 1})
            self.add("A06", f"{kind} labels repeat {repeated}; each dimension needs its own label", path=indices.name)
        if not readable:
            return
        unbacked = unbacked_size(indices) or unbacked_size(values)
        if unbacked:
            self.add("F02", f"{unbacked}; the table cannot be checked", path=indices.name)
            return
        index_table, value_table = indices[()], values[()]
        if axis == 1:
            index_table, value_table = index_table.T, value_table.T
        counts = self.check_counting(kind, indices.name, index_table, labels)
        if counts and grid_layout(index_table) is None:
            self.add("A08", f"{kind} indices are not a full C-ordered grid: a non-grid (sparse) dataset with no N-D form", "info", indices.name)
        self.check_function(kind, values.name, index_table, value_table, labels)

    def check_labels(self, kind: str, indices: h5py.Dataset, values: h5py.Dataset, dims: int) -> list[str] | None:
        found = {}
        for table in (indices, values):
            for name in ("labels", "units"):
                value = string_list_attr(table, name)
                if value is None:
                    self.add("A05", f"the {name!r} attribute is missing or not a list of strings", path=table.name)
                elif len(value) != dims:
                    self.add("A05", f"{len(value)} {name} for {dims} dimensions", path=table.name)
                else:
                    found[(table.name, name)] = value
        for name in ("labels", "units"):
            pair = found.get((indices.name, name)), found.get((values.name, name))
            if None not in pair and pair[0] != pair[1]:
                self.add("A05", f"{kind}_Indices {name} {pair[0]} differ from {kind}_Values {name} {pair[1]}", path=indices.name)
        return found.get((indices.name, "labels"))

    def check_counting(self, kind: str, path: str, table: np.ndarray, labels: list[str] | None) -> bool:
        """A07; True when every index dimension counts without gaps."""
        rows, counts = table.shape[0], True
        for column in range(table.shape[1]):
            index = table[:, column]
            name = labels[column] if labels else f"column {column}"
            if index.size == 0:
                continue
            if index.dtype.kind == "i" and index.min() < 0:
                self.add("A07", f"{kind} dimension {name!r} has negative indices", path=path)
                counts = False
                continue
            top = int(index.max())
            if top >= rows or not np.all(np.bincount(index.astype(np.int64), minlength=top + 1)):
                self.add("A07", f"{kind} dimension {name!r} does not count 0, 1, 2, ... without gaps (largest index {top})", path=path)
                counts = False
        return counts

    def check_function(self, kind: str, path: str, indices: np.ndarray, values: np.ndarray, labels: list[str] | None) -> None:
        for column in range(indices.shape[1]):
            index, value = indices[:, column].astype(np.int64), values[:, column]
            if index.size == 0 or index.min() < 0 or index.max() >= index.size:  # A07 says it does not count
                continue
            representative = np.empty(int(index.max()) + 1, dtype=value.dtype)
            representative[index] = value
            expected = representative[index]
            same = (expected == value) | (np.isnan(expected) & np.isnan(value)) if value.dtype.kind == "f" else expected == value
            if not same.all():
                row = int(np.argmin(same))
                name = labels[column] if labels else f"column {column}"
                self.add("A09", f"{kind} dimension {name!r}: index {int(index[row])} has more than one value (row {row})", path=path)

    def check_bookkeeping(self) -> None:
        for obj in (self.main, self.main.parent):
            if obj.name == "/":
                continue
            names = set(obj.attrs)
            missing = [key for key in ("machine_id", "platform") if key not in names]
            if not names & {"timestamp", "time_stamp"}:
                missing.insert(0, "timestamp")
            else:
                stamp = string_attr(obj, "timestamp" if "timestamp" in names else "time_stamp")
                if not stamp or not TIMESTAMP.match(stamp):
                    self.add("B01", f"timestamp {stamp!r} is not YYYY_MM_DD-HH_MM_SS", "warning", obj.name)
            if not any(name.endswith("version") for name in names):
                missing.append("a *_version")
            if missing:
                self.add("B01", f"book-keeping attributes missing: {', '.join(missing)}", "warning", obj.name)

    def check_groups(self) -> None:
        parent = self.main.parent
        name = parent.name.rsplit("/", 1)[-1]
        if CHANNEL.match(name):
            grandparent = parent.parent.name.rsplit("/", 1)[-1]
            if not MEASUREMENT.match(grandparent):
                self.add("G01", f"the channel group sits in {parent.parent.name!r}, expected a Measurement_NNN group", "warning", parent.name)
        elif RESULTS.match(name):
            if dereference(parent.file, parent.attrs.get("source_000")) is None:
                self.add("G01", "results group without a resolvable 'source_000' reference to its source dataset", "warning", parent.name)
            if "source_001" in parent.attrs and not {"tool", "num_sources"} <= set(parent.attrs):
                self.add("G01", "results group with several sources needs 'tool' and 'num_sources' attributes", "warning", parent.name)
        else:
            self.add("G01", f"Main dataset in group {parent.name!r}; USID expects Measurement_NNN/Channel_NNN or a results group Source-Tool_NNN", "warning")


def _candidates(file: h5py.File | h5py.Group) -> list[h5py.Dataset | str]:
    """Datasets carrying any ancillary reference attribute; an unreadable object yields its path."""
    return marked(file, h5py.Dataset, ANCILLARY_NAMES)


def validate(target: str | PathLike[str] | h5py.File | h5py.Group) -> Report:
    """Check every Main candidate of an HDF5 file (path or open h5py object) against the rules.

    Raises `UnreadableFileError` only when the path is not a readable HDF5 file; everything
    inside an HDF5 file, however broken, becomes findings.
    """
    if isinstance(target, (h5py.File, h5py.Group)):
        return _validate_open(target, target.file.filename)
    with open_hdf5(target) as file:
        report = _validate_open(file, str(target))
    if not report.main_datasets and any(finding.rule == "F01" for finding in report.findings):
        _say_what_it_is(report, Path(target))
    return report


def _say_what_it_is(report: Report, path: Path) -> None:
    """F01 on a file another format reads (NSID, NeXus, HyperSpy, netCDF, a Velox EMD...): say which, and the command that makes it USID."""
    from .registry import detect

    try:
        reader = detect(path)
    except UsidBridgeError:
        return
    if reader.name == "h5usid":
        return
    command = f"usidbridge convert {path} {path.with_name(path.stem + '_usid.h5')}"
    what = "a plain HDF5 file (`usidbridge info` shows which datasets convert)" if reader.name == "hdf5" else f"{reader.description} (format {reader.name})"
    report.findings = [
        replace(finding, message=f"{finding.message}. This is {what}, not USID: `{command}` makes it USID") if finding.rule == "F01" else finding
        for finding in report.findings
    ]


def _validate_open(file: h5py.File | h5py.Group, name: str) -> Report:
    report = Report(file=name)
    candidates = _candidates(file)
    for candidate in candidates:
        if isinstance(candidate, str):
            report.findings.append(Finding("F02", "error", candidate, "this object cannot be read; the file may be damaged"))
            continue
        try:
            findings = _Checker(candidate).run()
        except DAMAGED_HDF5 as error:
            findings = [Finding("F02", "error", candidate.name, f"could not be checked: {type(error).__name__}: {error}")]
        report.findings.extend(findings)
        if not any(finding.severity == "error" for finding in findings):
            report.main_datasets.append(candidate.name)
    if not any(isinstance(candidate, h5py.Dataset) for candidate in candidates):
        report.findings.append(
            Finding("F01", "error", "/", "no Main dataset: no dataset carries Position_Indices / Spectroscopic_Indices references")
        )
    return report


def check_dataset(dataset: Dataset) -> list[Finding]:
    """The rules that apply to an in-memory `Dataset` (the model enforces shapes and table forms)."""
    findings = []
    path = dataset.name
    if not isinstance(dataset.quantity, str) or not dataset.quantity:
        findings.append(Finding("M02", "error", path, f"quantity must be a non-empty string, got {dataset.quantity!r}"))
    if not isinstance(dataset.units, str):
        findings.append(Finding("M03", "error", path, f"units must be a string, got {dataset.units!r}"))
    problem = check_dtype(dataset.dtype)
    if problem:
        findings.append(Finding("M06", "error", path, problem))
    for kind, ancillary in (("Position", dataset.pos), ("Spectroscopic", dataset.spec)):
        if not ancillary.is_grid:
            findings.append(Finding("A08", "info", path, f"{kind} is not a full grid: non-grid dataset with no N-D form"))
    return findings


def main_candidates(file: h5py.File | h5py.Group) -> list[h5py.Dataset]:
    """The datasets of a file that carry any ancillary reference attribute (readable ones only)."""
    return [candidate for candidate in _candidates(file) if isinstance(candidate, h5py.Dataset)]
