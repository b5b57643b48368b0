"""Column text: whitespace-delimited numeric columns with optional ``#`` comments, read as one scan (as PyMca does).

Mapping between the file and the model:

=============================================  ================================================
text                                           `Dataset`
=============================================  ================================================
one column (PyMca's XRFSpectrum.mca)           one spectrum: spectroscopic dim ``Channel``
                                               (0, 1, 2, ...) at one placeholder position
two or more columns                            the first is the position dim (its values), every
                                               other a Dataset over it, quantity = its label
labels: the last comment line before the       column names; else ``Column 1``, ``Column 2``...
data (``#L a  b  c`` or ``# a b c``) when it
names every column
every comment line                             ``metadata["columns"]["comments"]``
=============================================  ================================================

Detected by content: every non-comment line of the first 4 KiB holds the same number of numbers,
and there is no SPEC scan header (``#S``, ``#F``, ``#L`` with ``#S``), so a SPEC file is never read
as columns. Text has no units: units are empty.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from usidbridge.errors import UnreadableFileError
from usidbridge.model import Ancillary, Dataset, Dimension, placeholder_dimension
from usidbridge.registry import Format, Profile

SPEC_MARKERS = re.compile(r"^#[SF] ", re.MULTILINE)
LABEL_SEPARATOR = re.compile(r"\s{2,}")
MIN_SNIFFED_ROWS = 2


def _number_rows(lines: list[str]) -> list[int] | None:
    """The number of values on each data line, or None when a data line is not all numbers."""
    counts = []
    for line in lines:
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        try:
            counts.append(len([float(token) for token in stripped.split()]))
        except ValueError:
            return None
    return counts


def looks_like_columns(head: bytes) -> bool:
    """True when the first bytes are numeric columns of one width with optional '#' comments, and not SPEC."""
    if b"\x00" in head:
        return False
    text = head.decode("latin-1")
    if SPEC_MARKERS.search(text):
        return False
    lines = text.splitlines()
    if len(head) >= 4096 and lines:
        lines = lines[:-1]  # the last line may be cut
    counts = _number_rows(lines)
    return counts is not None and len(counts) >= MIN_SNIFFED_ROWS and len(set(counts)) == 1 and counts[0] >= 1


def _labels(comments: list[str], count: int) -> list[str]:
    """Column names from the last comment line when it names every column, else Column 1, Column 2, ..."""
    if comments:
        last = comments[-1]
        if last.startswith("#L "):
            names = [name for name in LABEL_SEPARATOR.split(last[3:].strip()) if name]
        else:
            names = last.lstrip("#").split()
        if len(names) == count and len(set(names)) == count:
            return names
    return [f"Column {number}" for number in range(1, count + 1)]


def read_file(path: Path) -> list[Dataset]:
    """The columns of a text file as one scan; see the module text for the mapping."""
    comments, rows, header = [], [], []
    width = None
    with open(path, encoding="latin-1") as handle:
        for number, line in enumerate(handle, start=1):
            stripped = line.strip()
            if not stripped:
                continue
            if stripped.startswith("#"):
                comments.append(stripped)
                if not rows:
                    header.append(stripped)
                continue
            tokens = stripped.split()
            if width is None:
                width = len(tokens)
            elif len(tokens) != width:
                raise UnreadableFileError(f"line {number}: {len(tokens)} values where the columns above have {width}", path)
            try:
                rows.append([float(token) for token in tokens])
            except ValueError:
                raise UnreadableFileError(f"line {number}: not numbers ({stripped[:40]!r}); column text holds numbers and '#' comments only", path) from None
    if not rows:
        raise UnreadableFileError("no numeric rows in this text file", path)
    table = np.asarray(rows, dtype=np.float64)
    labels = _labels(header, table.shape[1])
    metadata = {"columns": {"comments": comments, "labels": labels}}
    source = str(path)
    if table.shape[1] == 1:
        channel = Dimension("Channel", "", table.shape[0])
        return [Dataset(table.T, Ancillary([placeholder_dimension()]), Ancillary([channel]), quantity=labels[0] if header else "Counts", units="", metadata=metadata, source=source)]
    position = Ancillary([Dimension(labels[0], "", table[:, 0])])
    spectral = Ancillary([placeholder_dimension()])
    return [
        Dataset(np.ascontiguousarray(table[:, [column]]), position, spectral, quantity=label, units="", metadata=metadata, source=f"{source}::{label}")
        for column, label in enumerate(labels[1:], start=1)
    ]


class ColumnsFormat(Format):
    name = "columns"
    description = "whitespace-delimited numeric columns with '#' comments (PyMca's simplest format), read-only"
    extensions = (".mca", ".xy")  # detected by content; .txt and .dat files are too varied to claim by name
    profile = Profile(units="loses", dtypes="loses", nested_metadata="loses")

    def sniff(self, head: bytes, path: Path) -> int:
        return 2 if looks_like_columns(head) else 0

    def read(self, path: Path, *, lazy: bool = False) -> list[Dataset]:
        return read_file(path)


FORMAT = ColumnsFormat()
