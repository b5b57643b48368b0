"""SPEC text files (certif SPEC, PyMca, silx), read by our own parser and written for silx/PyMca.

Mapping between the file and the model, for each scan ``#S N command`` (a repeated scan number
is numbered ``N.M``: 1.1, 1.2, as silx and PyMca do):

================================================  =============================================
SPEC                                              `Dataset`
================================================  =============================================
first ``#L`` column (the scanned motor, or time)  position dim (its measured values)
``mesh m1 a b n1 m2 c d n2``                      2-D position grid (m2 slow, m1 fast) of the
                                                  nominal positions; an aborted mesh is non-grid
every other ``#L`` column (counters)              one Dataset each, quantity = its label
                                                  (mesh motor readbacks are kept this way too)
``@A`` spectra (``#@CHANN``, ``#@CALIB a b c``)   Dataset positions x channels per MCA, values
                                                  a + b*ch + c*ch^2 ("Energy"), else "Channel";
``#@MCA_NAME``, ``#@MCA_UNITS`` (ours)           its quantity and units (else "MCA", counts)
``#O`` / ``#P`` motor positions, ``#G #Q #T #M``  ``metadata["spec"]``: motors, geometry, hkl,
``#D #C #U``, file header ``#F #E #D #C``         count time, monitor, date, comments, user lines
================================================  =============================================

``scanned=spectroscopic`` makes the scanned motor a spectroscopic dim of one position, which is
what an energy scan (EXAFS, XANES) is: one spectrum per counter, and each MCA a 2-D spectrum over
(motor, channel). Keep the default (position) when the motor moves the sample (a line scan, a
mesh). ``scanned=auto`` chooses spectroscopic for 1-D scans of an energy motor (Energy, E, mono*,
dcm*, ...). SPEC has no units: units are empty. Labels are separated by two spaces and may contain single
spaces. Comments and blank lines are allowed anywhere; an aborted scan (fewer points than
promised, a truncated last line) keeps its complete points; a non-numeric data line is an error
naming the line. The writer puts datasets with the same positions into one scan (one or two
position dims: ``ascan`` or ``mesh``), MCA datasets as ``@A`` lines, and numbers in their
shortest exact decimal form. The file is Latin-1 text: other characters are written as ``?``, and
header text with control characters or line breaks is refused.
"""

from __future__ import annotations

import math
import re
import time
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from usidbridge import progress
from usidbridge.errors import ModelError, UnreadableFileError, UnsupportedFeatureError
from usidbridge.model import Ancillary, Dataset, Dimension, group_by_positions
from usidbridge.registry import Format, Profile

MESH_COMMANDS = ("mesh", "dmesh", "cmesh")
LABEL_SEPARATOR = re.compile(r"\s{2,}")
MCA_CONTINUATION = "\\"
ROW_BLOCK_VALUES = 2**20  # values read per block when writing: the text of a block is formatted and written before the next is read


@dataclass
class Scan:
    """The lines of one scan, as found in the file."""

    number: int
    command: str
    line: int
    file_header: dict[str, Any]
    header: list[str] = field(default_factory=list)
    data_lines: list[tuple[int, str]] = field(default_factory=list)
    mca_lines: list[tuple[int, str]] = field(default_factory=list)
    key: str = ""


def _split_labels(text: str) -> list[str]:
    return [label for label in LABEL_SEPARATOR.split(text.strip()) if label]


def _lines(path: Path) -> list[str]:
    """The file's lines, read at once (Python's universal newlines: \\n, \\r\\n and \\r)."""
    with open(path, encoding="latin-1", newline="") as handle:
        return handle.read().replace("\r\n", "\n").replace("\r", "\n").split("\n")


def split_scans(path: Path) -> list[Scan]:
    """Cut a SPEC file into scans, each with the file header in force and its own lines."""
    file_header: dict[str, Any] = {"comments": [], "motor_names": []}
    scans: list[Scan] = []
    current: Scan | None = None
    pending_mca = False  # the last MCA line ended with a continuation
    seen: dict[int, int] = {}
    for number, line in enumerate(_lines(path), start=1):
        first = line[:1]
        if current is not None and first not in ("#", "") and not first.isspace():  # most lines: a scan's data or MCA
            if pending_mca or (first == "@" and line.startswith("@A")):
                current.mca_lines.append((number, line))
                pending_mca = line.rstrip().endswith(MCA_CONTINUATION)
            else:
                current.data_lines.append((number, line))
            continue
        if line.startswith("#S "):
            parts = line[3:].strip().split(None, 1)
            try:
                scan_number = int(parts[0])
            except (ValueError, IndexError):
                raise UnreadableFileError(f"line {number}: '#S' needs a scan number, found {line[:40]!r}", path) from None
            seen[scan_number] = seen.get(scan_number, 0) + 1
            current = Scan(scan_number, parts[1] if len(parts) > 1 else "", number, file_header, key=f"{scan_number}.{seen[scan_number]}")
            scans.append(current)
            continue
        if not line.strip():
            current = None
            continue
        if current is None:
            if line.startswith(("#F", "#E")) and scans and file_header is scans[-1].file_header:
                file_header = {"comments": [], "motor_names": []}
            _file_header_line(file_header, line)
            continue
        if line.startswith("#"):
            current.header.append(line)
        elif line.startswith("@A") or pending_mca:
            current.mca_lines.append((number, line))
            pending_mca = line.rstrip().endswith(MCA_CONTINUATION)
        else:
            current.data_lines.append((number, line))
    return scans


def _file_header_line(header: dict[str, Any], line: str) -> None:
    if line.startswith("#C"):
        header["comments"].append(line[2:].strip())
    elif re.match(r"#O\d+", line):
        parts = line.split(None, 1)
        header["motor_names"].extend(_split_labels(parts[1] if len(parts) > 1 else ""))
    elif line.startswith("#"):
        key, _, value = line[1:].partition(" ")
        header[key] = value.strip()


@dataclass
class ParsedScan:
    labels: list[str]
    columns: np.ndarray
    mca: list[np.ndarray]
    metadata: dict[str, Any]
    aborted: bool


def _numbers(path: Path, lines: list[tuple[int, str]], width: int | None) -> tuple[np.ndarray, bool]:
    """Data lines as a (points, width) array, parsed by numpy's C reader; the faulty line named on error.

    A last line shorter than the others is an aborted scan's partial point, and is left out.
    """
    if width and lines:
        texts = [text for _, text in lines]
        aborted = len(texts[-1].split()) != width
        if aborted:
            texts = texts[:-1]
        try:
            array = np.loadtxt(texts, dtype=np.float64, comments=None, ndmin=2) if texts else np.empty((0, width))
        except ValueError:
            array = None  # a line that is not numbers, or of another width: the line-by-line reading below names it
        if array is not None and array.shape[1] == width:
            return array, aborted
    rows = [text.split() for _, text in lines]
    if width is None:
        width = max((len(row) for row in rows), default=0)
    aborted = False
    if rows and len(rows[-1]) != width:
        rows, aborted = rows[:-1], True
    for (number, text), row in zip(lines, rows):
        if len(row) != width:
            raise UnreadableFileError(f"line {number}: {len(row)} values where the scan has {width} columns: {text[:60]!r}", path)
    try:
        return np.array(rows, dtype=np.float64).reshape(len(rows), width), aborted
    except ValueError:
        for (number, text), row in zip(lines, rows):
            try:
                [float(value) for value in row]
            except ValueError:
                raise UnreadableFileError(f"line {number}: a data line that is not numbers: {text[:60]!r}", path) from None
        raise


def _mca_spectra(path: Path, lines: list[tuple[int, str]]) -> list[np.ndarray]:
    """The ``@A`` spectra, continuation lines joined: parsed at once by numpy's C reader when they have
    one length, else one by one (the faulty spectrum named on error)."""
    joined = "\n".join(text.rstrip() for _, text in lines).replace(MCA_CONTINUATION + "\n", " ")
    bodies = [body[2:] for body in joined.split("\n") if body.startswith("@A")]
    if len(bodies) == sum(1 for _, text in lines if text.startswith("@A")) and bodies:
        try:
            return list(np.loadtxt(bodies, dtype=np.float64, comments=None, ndmin=2))
        except ValueError:
            pass  # spectra of several lengths, or not numbers: one by one below
    spectra, parts, start = [], [], 0
    for number, text in lines:
        if text.startswith("@A"):
            parts, start = [text[2:]], number
        else:
            parts.append(text)
        if not text.rstrip().endswith(MCA_CONTINUATION):
            body = " ".join(part.rstrip().rstrip(MCA_CONTINUATION) for part in parts)
            try:
                spectra.append(np.array(body.split(), dtype=np.float64))
            except ValueError:
                raise UnreadableFileError(f"line {start}: an MCA spectrum ('@A') that is not numbers", path) from None
            parts = []
    return spectra


def parse_scan(path: Path, scan: Scan) -> ParsedScan:
    """Labels, numbers, MCA spectra and header of one scan."""
    spec: dict[str, Any] = {"scan": scan.key, "number": scan.number, "command": scan.command, "comments": [], "user": [], "header": list(scan.header)}
    labels: list[str] = []
    promised = None
    positions: dict[int, list[float]] = {}
    channels, calibrations = [], []
    try:
        for line in scan.header:
            tag, _, value = line[1:].partition(" ")
            value = value.strip()
            if tag == "L":
                labels = _split_labels(value)
            elif tag == "N":
                promised = int(value.split()[0]) if value.split() and value.split()[0].isdigit() else None
            elif tag == "C":
                spec["comments"].append(value)
            elif tag == "D":
                spec["date"] = value
            elif tag == "T":
                spec["count_time"] = float(value.split()[0])
            elif tag == "M":
                spec["monitor"] = float(value.split()[0])
            elif tag == "Q":
                spec["hkl"] = [float(item) for item in value.split()]
            elif re.fullmatch(r"G\d+", tag):
                spec.setdefault("geometry", {})[tag] = [float(item) for item in value.split()]
            elif re.fullmatch(r"P\d+", tag):
                positions[int(tag[1:])] = [float(item) for item in value.split()]
            elif tag.startswith("U"):
                spec["user"].append(line[1:])
            elif tag == "@CHANN":
                channels.append([int(float(item)) for item in value.split()])
            elif tag == "@CALIB":
                calibrations.append([float(item) for item in value.split()])
            elif tag == "@MCA_NAME":  # written by usidbridge: the quantity and units of the @A spectra
                spec.setdefault("mca_names", []).append(value)
            elif tag == "@MCA_UNITS":
                spec.setdefault("mca_units", []).append(value)
    except (ValueError, IndexError):
        raise UnreadableFileError(f"scan {scan.key}: the header line {line[:60]!r} does not hold the numbers SPEC puts there", path) from None
    motor_values = [value for index in sorted(positions) for value in positions[index]]
    spec["motors"] = dict(zip(scan.file_header["motor_names"], motor_values))
    spec["file_header"] = {key: value for key, value in scan.file_header.items() if key != "motor_names"}
    width = len(labels) if labels else promised
    columns, aborted = _numbers(path, scan.data_lines, width)
    if not labels:
        labels = [f"Column {index + 1}" for index in range(columns.shape[1])]
    spectra = _mca_spectra(path, scan.mca_lines)
    points = columns.shape[0]
    mca: list[np.ndarray] = []
    if spectra and points:
        per_point = max(1, len(spectra) // points)
        usable = spectra[: per_point * points]
        if len(usable) < per_point * points:
            raise UnreadableFileError(f"scan {scan.key}: {len(spectra)} MCA spectra ('@A') for {points} data points; each point needs its own", path)
        sizes = {spectrum.size for spectrum in usable}
        if len(sizes) == 1:
            stacked = np.stack(usable).reshape(points, per_point, -1)
            mca = [stacked[:, index, :] for index in range(per_point)]
        spec["mca_channels"], spec["mca_calibration"] = channels, calibrations
    return ParsedScan(labels, columns, mca, {"spec": spec}, aborted or (promised is not None and points < promised))


MAX_MESH_POSITIONS = 10**7


def _mesh(command: str) -> tuple[str, list[float], str, list[float]] | None:
    """(fast motor, nominal values, slow motor, nominal values) of a mesh command (None when it is not one).

    A mesh declaring more than `MAX_MESH_POSITIONS` positions is refused by the caller before its
    axes are built: SPEC cannot have recorded it, and the values alone would fill the memory.
    """
    words = command.split()
    if len(words) < 9 or words[0] not in MESH_COMMANDS:
        return None
    try:
        fast_start, fast_stop, fast_intervals = float(words[2]), float(words[3]), int(words[4])
        slow_start, slow_stop, slow_intervals = float(words[6]), float(words[7]), int(words[8])
    except ValueError:
        return None
    if min(fast_intervals, slow_intervals) < 0:
        return None
    if (fast_intervals + 1) * (slow_intervals + 1) > MAX_MESH_POSITIONS:
        raise ModelError(f"the mesh command declares {fast_intervals + 1} x {slow_intervals + 1} positions, more than a SPEC scan records ({MAX_MESH_POSITIONS})")
    return (
        words[1],
        list(np.linspace(fast_start, fast_stop, fast_intervals + 1)),
        words[5],
        list(np.linspace(slow_start, slow_stop, slow_intervals + 1)),
    )


def _positions(parsed: ParsedScan, command: str) -> tuple[Ancillary, list[int]]:
    """The position ancillary of a scan and the columns it uses (not channels, except mesh readbacks)."""
    points = parsed.columns.shape[0]
    mesh = _mesh(command)
    if mesh and len(parsed.labels) >= 2:
        _, fast_values, _, slow_values = mesh
        slow_label, fast_label = parsed.labels[1], parsed.labels[0]
        fast, slow = Dimension(fast_label, "", fast_values), Dimension(slow_label, "", slow_values)
        if points == fast.size * slow.size:
            return Ancillary([slow, fast]), []
        if points > fast.size * slow.size:
            raise ModelError(f"{points} points for a mesh of {slow.size} x {fast.size} positions")
        indices = np.stack(np.unravel_index(np.arange(points), (slow.size, fast.size)), axis=1).astype(np.uint32)
        values = np.stack([slow.values[indices[:, 0]], fast.values[indices[:, 1]]], axis=1)
        return Ancillary.from_table([slow_label, fast_label], ["", ""], indices, values), []
    return Ancillary([Dimension(parsed.labels[0], "", parsed.columns[:, 0])]), [0]


def _mca_dimension(parsed: ParsedScan, index: int, size: int) -> Dimension:
    spec = parsed.metadata["spec"]
    channels = spec.get("mca_channels", [])
    calibrations = spec.get("mca_calibration", [])
    chann = channels[min(index, len(channels) - 1)] if channels else None
    numbers = np.arange(size, dtype=np.float64)
    if chann and len(chann) >= 3:
        reduction = chann[3] if len(chann) > 3 and chann[3] > 0 else 1
        if math.isfinite(chann[1]) and math.isfinite(chann[2]) and math.floor((chann[2] - chann[1]) / reduction) + 1 == size:  # a damaged #@CHANN may declare any range
            candidate = np.arange(chann[1], chann[2] + 1, reduction, dtype=np.float64)
            if candidate.size == size:
                numbers = candidate
    calibration = calibrations[min(index, len(calibrations) - 1)] if calibrations else None
    if calibration and len(calibration) >= 2 and list(calibration[:3]) != [0.0, 1.0, 0.0][: len(calibration)]:
        a, b, c = (list(calibration) + [0.0, 0.0])[:3]
        return Dimension("Energy", "", a + b * numbers + c * numbers**2)
    return Dimension("Channel", "", numbers)


SCANNED_AS = ("position", "spectroscopic", "auto")
ENERGY_MOTOR = re.compile(r"^(e|en|energy|ekev|e_kev|ev|mono\w*|dcm\w*|hdcm\w*|monoe|mono_energy)$", re.IGNORECASE)


def _scanned_is_spectroscopic(scanned: str, label: str, command: str, path: Path) -> bool:
    """Whether the scanned motor is a spectroscopic dim: asked for, or ("auto") an energy motor of a 1-D scan."""
    if scanned not in SCANNED_AS:
        raise UnsupportedFeatureError(f"scanned must be one of {', '.join(SCANNED_AS)}, not {scanned!r}")
    if scanned == "auto":
        return _mesh(command) is None and bool(ENERGY_MOTOR.match(label.strip()))
    return scanned == "spectroscopic"


def scan_datasets(path: Path, scan: Scan, scanned: str = "position") -> list[Dataset]:
    """Every Dataset of one scan: one per counter column, one per MCA; a scan whose parts disagree is an error naming it."""
    try:
        return _scan_datasets(path, scan, scanned)
    except ModelError as error:
        raise UnreadableFileError(f"scan {scan.key} (line {scan.line}): {error.message}", path) from None


def _scan_datasets(path: Path, scan: Scan, scanned: str) -> list[Dataset]:
    parsed = parse_scan(path, scan)
    if parsed.columns.shape[0] == 0:
        return []
    parsed.metadata["spec"]["aborted"] = parsed.aborted
    pos, used = _positions(parsed, scan.command)
    source = f"{path}::scan {scan.key}"
    single = Ancillary([Dimension("arb", "a.u.", [0.0])])
    as_spectrum = pos.is_grid and _scanned_is_spectroscopic(scanned, parsed.labels[0], scan.command, path)
    datasets = []
    for column, label in enumerate(parsed.labels):
        if column in used:
            continue
        values = parsed.columns[:, column : column + 1]
        layout = (values.T, single, pos) if as_spectrum else (values, pos, single)  # a spectrum over the scanned motor at one position
        datasets.append(Dataset(*layout, quantity=label, units="", metadata=parsed.metadata, source=f"{source}/{label}"))
    names, units = parsed.metadata["spec"].get("mca_names", []), parsed.metadata["spec"].get("mca_units", [])
    for index, spectra in enumerate(parsed.mca):
        channel = _mca_dimension(parsed, index, spectra.shape[1])
        if as_spectrum:
            layout = (spectra.reshape(1, -1), single, Ancillary([*pos.dims, channel]))
        else:
            layout = (spectra, pos, Ancillary([channel]))
        quantity = names[index] if index < len(names) else f"MCA {index}" if len(parsed.mca) > 1 else "MCA"
        datasets.append(Dataset(*layout, quantity=quantity, units=units[index] if index < len(units) else "counts", metadata=parsed.metadata, source=f"{source}/MCA {index}"))
    return datasets


def read_file(path: Path, scans: Sequence[str] | None = None, scanned: str = "position") -> list[Dataset]:
    """Every Dataset of every scan (or of the scans whose keys, like "1.1", are given); `scanned` says where the scanned motor goes."""
    found = split_scans(path)
    if not found:
        raise UnreadableFileError("no '#S' scan line: not a SPEC file, or a SPEC file without scans", path)
    wanted = [scan for scan in found if scans is None or scan.key in scans or str(scan.number) in scans]
    datasets = [dataset for scan in wanted for dataset in scan_datasets(path, scan, scanned)]
    if not datasets:
        raise UnreadableFileError(f"{len(found)} scan(s) but no data points in them", path)
    return datasets


def _number_text(value: float) -> str:
    """The shortest text that reads back to the same float (integers without a decimal point; -0.0 keeps its sign)."""
    value = float(value)
    negative_zero = value == 0 and math.copysign(1.0, value) < 0
    if value.is_integer() and abs(value) < 1e15 and not negative_zero:
        return str(int(value))
    return repr(value)


def _line_text(text: str, what: str) -> str:
    """Text for one header line: a control character (a line break to a reader) would end the line early."""
    if any(unicodedata.category(character) in ("Cc", "Zl", "Zp") for character in text):
        raise UnsupportedFeatureError(f"SPEC {what} {text!r}: a header line cannot hold control characters or line breaks; rename it")
    return text


def _label(text: str) -> str:
    if "  " in text or text != text.strip() or not text:
        raise UnsupportedFeatureError(f"SPEC label {text!r}: labels are separated by two spaces, so they cannot hold two spaces in a row or start or end with one")
    return _line_text(text, "label")


def _calibration(dataset: Dataset, index: int) -> list[float] | None:
    """``a b c`` with values = a + b*ch + c*ch^2: the source's own when it reproduces the axis, else a fit.

    Channel numbers (0, 1, 2, ...) need no calibration; an axis no quadratic reproduces is refused.
    """
    (dim,) = dataset.spec.dims
    channel = np.arange(dim.size, dtype=np.float64)
    if np.array_equal(dim.values, channel):
        return None
    known = dataset.metadata.get("spec", {}).get("mca_calibration", [])
    for candidate in known[index : index + 1] + known[:1]:
        a, b, c = (list(candidate) + [0.0, 0.0])[:3]
        if np.array_equal(a + b * channel + c * channel**2, dim.values):
            return [float(a), float(b), float(c)]
    fitted = [float(value) for value in np.polynomial.polynomial.polyfit(channel, dim.values, min(2, dim.size - 1))] + [0.0, 0.0]
    a, b, c = fitted[:3]
    if not np.allclose(a + b * channel + c * channel**2, dim.values, rtol=1e-9, atol=1e-12 * np.abs(dim.values).max()):
        raise UnsupportedFeatureError(
            f"SPEC MCA axes are channel numbers with a quadratic calibration; {dataset.quantity}'s axis {dim.name!r} is not"
        )
    return [a, b, c]


def _rows(columns: Sequence[Any], spectra: Sequence[Any]) -> Iterator[str]:
    """The data lines of a scan (``@A`` spectra, then the point's columns), read a block of points at a time.

    `columns` are arrays of shape (points,) or (points, 1) (numpy, h5py, dask), `spectra` of shape
    (points, channels): memory stays at one block whatever the scan's size.
    """
    points = len(columns[0])
    width = sum(int(np.prod(spectrum.shape[1:])) for spectrum in spectra) + len(columns)
    step = max(1, ROW_BLOCK_VALUES // max(1, width))
    for start in range(0, points, step):
        stop = min(points, start + step)
        column_block = [np.asarray(column[start:stop], dtype=np.float64).reshape(-1) for column in columns]
        spectrum_block = [np.asarray(spectrum[start:stop]) for spectrum in spectra]
        for row in range(stop - start):
            for spectrum in spectrum_block:
                yield "@A " + " ".join(_number_text(value) for value in spectrum[row])
            yield " ".join(_number_text(column[row]) for column in column_block)
        progress.advance(stop, points)


def _scan_text(number: int, members: list[Dataset]) -> Iterator[str]:
    first = members[0]
    spec = first.metadata.get("spec", {})
    pos = first.pos
    if not pos.is_grid or len(pos.dims) > 2:
        raise UnsupportedFeatureError(f"SPEC scans have one or two position dims on a grid; {first.quantity} has positions {list(pos.labels)}")
    dims = pos.dims
    for dim in dims if len(dims) == 2 else ():  # a mesh's positions are read from its command; an ascan's from its first column
        if any(character.isspace() for character in dim.name):
            raise UnsupportedFeatureError(f"SPEC mesh motor {dim.name!r}: the scan command (#S) separates its words by spaces, so a mesh motor's name cannot hold one; rename the dim")
    if len(dims) == 1:
        dim = dims[0]
        command = f"ascan  {dim.name} {_number_text(dim.values[0])} {_number_text(dim.values[-1])} {dim.size - 1} {spec.get('count_time', 1)}"
        position_columns, position_labels = [dim.values], [dim.name]
    else:
        slow, fast = dims
        command = (
            f"mesh  {fast.name} {_number_text(fast.values[0])} {_number_text(fast.values[-1])} {fast.size - 1} "
            f"{slow.name} {_number_text(slow.values[0])} {_number_text(slow.values[-1])} {slow.size - 1} {spec.get('count_time', 1)}"
        )
        values = pos.values
        position_columns, position_labels = [values[:, 1], values[:, 0]], [fast.name, slow.name]
        readbacks = {dataset.quantity: dataset for dataset in members if dataset.quantity in position_labels and dataset.shape[1] == 1}
        position_columns = [readbacks[label].data if label in readbacks else column for label, column in zip(position_labels, position_columns)]
        members = [dataset for dataset in members if all(dataset is not readback for readback in readbacks.values())]
    columns = [dataset for dataset in members if dataset.shape[1] == 1]
    spectra = [dataset for dataset in members if dataset.shape[1] > 1]
    lines = [f"#S {number} {command}", f"#D {_line_text(str(spec.get('date', time.strftime('%a %b %d %H:%M:%S %Y'))), 'date')}"]
    if "count_time" in spec:
        lines.append(f"#T {spec['count_time']}  (Seconds)")
    for comment in spec.get("comments", []):
        lines.append(f"#C {_line_text(str(comment), 'comment')}")
    motors = spec.get("motors", {})
    if motors:
        lines.append("#P0 " + " ".join(_number_text(value) for value in motors.values()))
    labels = [_label(label) for label in position_labels + [dataset.quantity for dataset in columns]]
    lines += [f"#N {len(labels)}", "#L " + "  ".join(labels)]
    for index, dataset in enumerate(spectra):
        (dim,) = dataset.spec.dims
        lines.append("#@MCA %16C")
        lines.append(f"#@CHANN {dim.size} 0 {dim.size - 1} 1")
        calibration = _calibration(dataset, index)
        if calibration:
            lines.append("#@CALIB " + " ".join(repr(value) for value in calibration))
        lines.append(f"#@MCA_NAME {_label(dataset.quantity)}")
        lines.append(f"#@MCA_UNITS {_line_text(dataset.units, 'units')}")
    yield from lines
    yield from _rows(position_columns + [dataset.data for dataset in columns], [dataset.data for dataset in spectra])


def write_file(datasets: Sequence[Dataset], path: Path) -> None:
    """Datasets with the same positions become one scan; MCA datasets become @A lines."""
    for dataset in datasets:
        if dataset.dtype.fields or dataset.dtype.kind == "c":
            raise UnsupportedFeatureError(f"SPEC holds real numbers; {dataset.quantity} is {dataset.dtype}")
        if not dataset.spec.is_grid or len(dataset.spec.dims) > 1:
            raise UnsupportedFeatureError(f"SPEC holds one spectrum per point (MCA); {dataset.quantity} has spectroscopic dims {list(dataset.spec.labels)}")
    scans = group_by_positions(datasets)
    file_header = datasets[0].metadata.get("spec", {}).get("file_header", {})
    lines = [f"#F {path.name}", f"#E {int(time.time())}", f"#D {time.strftime('%a %b %d %H:%M:%S %Y')}"]
    lines += [f"#C {_line_text(str(comment), 'comment')}" for comment in file_header.get("comments", [])]
    motors = datasets[0].metadata.get("spec", {}).get("motors", {})
    if motors:
        lines.append("#O0 " + "  ".join(_label(name) for name in motors))
    with open(path, "w", encoding="latin-1", errors="replace") as file:
        file.writelines(line + "\n" for line in lines)
        for number, members in enumerate(scans, start=1):
            file.write("\n")
            file.writelines(line + "\n" for line in _scan_text(number, members))


class SpecFormat(Format):
    name = "spec"
    description = "SPEC text files (certif SPEC, PyMca, silx)"
    extensions = (".spec", ".dat", ".spc")
    profile = Profile(dims="loses", units="loses", dtypes="loses", complex="refuses", compound="refuses", non_grid="refuses", max_dims=3, nested_metadata="loses", exact_floats=False)  # text: NaN payloads become plain nan
    read_options = {
        "scans": "the scans to read, by number: [\"1.1\", \"3.1\"] (default: every scan)",
        "scanned": "position (default: a map over the scanned motor), spectroscopic (a spectrum of one position: EXAFS, XANES), or auto (spectroscopic for energy motors)",
    }

    def sniff(self, head: bytes, path: Path) -> int:
        text = head.decode("latin-1", errors="replace")
        first = text.lstrip()[:3]
        if first in ("#F ", "#S ", "#E ") or ("\n#S " in text and "\n#L " in text):
            return 2
        return 0

    def read(self, path: Path, *, lazy: bool = False, scans: Sequence[str] | None = None, scanned: str = "position") -> list[Dataset]:
        return read_file(path, scans=scans, scanned=scanned)

    def write(self, datasets: Sequence[Dataset], path: Path) -> None:
        write_file(datasets, path)


FORMAT = SpecFormat()
