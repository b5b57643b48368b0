"""Nanonis files: ``.sxm`` scans, ``.dat`` point spectra and ``.3ds`` spectroscopy grids, parsed here.

The three are a text header and a block of big-endian float32 (``.sxm``, ``.3ds``) or a table of
text numbers (``.dat``). nanonispy (unmaintained since 2019) and nanonispy2 read them but keep
neither the units of the channels nor the tip positions of a grid, and read whatever sizes the
header declares; this module checks every declared size against the file first.

Mapping between the file and the model:

=============================================  ================================================
file                                           `Dataset`
=============================================  ================================================
``.sxm`` ``DATA_INFO``: each channel ×         one Dataset each, named ``Z forward``,
direction (``both``: forward, backward)        ``Z backward``; quantity the channel, units its
                                               ``Unit`` (the values are stored calibrated)
``SCAN_PIXELS``, ``SCAN_RANGE``,               positions Y then X: pixel k at
``SCAN_OFFSET`` (the frame's centre)           ``centre - range / 2 + k · range / pixels``
``SCAN_DIR`` (``up``: first line at the        lines in order of increasing Y, and backward
bottom), backward lines stored right to left   lines turned, so that X and Y increase
``SCAN_ANGLE`` ≠ 0 (the frame turned           non-grid positions: the frame's points turned
clockwise about its centre)                    about its centre; ``-r positions=frame``: the
                                               frame's own grid, the angle in metadata
``.dat``: the first column (``Bias calc (V)``,  the spectroscopic dim, with its units
``Z rel (m)``, ...)
every other column                             one Dataset, quantity its exact name with its
                                               tags (``Current [bwd] [filt]``, ``[AVG]``,
                                               ``[00001]``), units from ``(unit)``
header ``X (m)``, ``Y (m)``                    the one position (dims X, Y)
``.3ds``: ``Channels``                         one Dataset each over all grid points
per-point ``X (m)``, ``Y (m)`` parameters      positions: the true tip positions, non-grid
                                               for a turned grid (indices: value ranks)
``Sweep Signal`` from ``Sweep Start`` to       the spectroscopic dim (``Points`` values)
``Sweep End``
the other per-point parameters (Z, settling    ``metadata["nanonis"]["point_parameters"]``
time, ...)
every header                                   ``metadata["nanonis"]["header"]``
=============================================  ================================================
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from usidbridge.errors import ModelError, UnknownOptionError, UnreadableFileError
from usidbridge.layout import grid_indices
from usidbridge.model import Ancillary, Dataset, Dimension, placeholder_dimension
from usidbridge.registry import Format, Profile

SXM_MAGIC = b":NANONIS_VERSION:"
GRID_MAGIC = b'Grid dim="'
DAT_MAGIC = b"Experiment\t"
SXM_HEADER_END = b":SCANIT_END:"
SXM_DATA_MARK = b"\x1a\x04"
GRID_HEADER_END = b":HEADER_END:"
MAX_HEADER_BYTES = 2**22
NAME_WITH_UNITS = re.compile(r"^(?P<name>.*?)\s*\((?P<units>[^()]*)\)(?P<tags>.*)$")
BYTE_ORDERS = {"MSBFIRST": ">", "LSBFIRST": "<"}


def quantity_and_units(label: str) -> tuple[str, str]:
    """``Current [bwd] (A)`` / ``Current (A) [bwd] [filt]`` → (``Current [bwd]`` / ``Current [bwd] [filt]``, ``A``)."""
    match = NAME_WITH_UNITS.match(label.strip())
    if not match:
        return label.strip(), ""
    return " ".join(f"{match['name']} {match['tags']}".split()), match["units"].strip()


def _number(text: str, what: str, path: Path) -> float:
    try:
        value = float(text.replace(",", "."))  # some locales write decimal commas
    except ValueError:
        raise UnreadableFileError(f"{what} is {text!r}, not a number", path) from None
    if not np.isfinite(value):
        raise UnreadableFileError(f"{what} is {text!r}, not a finite number", path)
    return value


def _header_bytes(path: Path, end_mark: bytes) -> tuple[bytes, int]:
    """The header (up to `end_mark`) and the offset just after the mark."""
    with open(path, "rb") as handle:
        head = handle.read(MAX_HEADER_BYTES)
    end = head.find(end_mark)
    if end < 0:
        raise UnreadableFileError(f"no {end_mark.decode()} in the first {MAX_HEADER_BYTES // 2**20} MiB: a truncated or damaged header", path)
    return head[:end], end + len(end_mark)


def _block(path: Path, start: int, dtype: str, count: int) -> np.ndarray:
    """`count` values of `dtype` from `start`, after checking that the file holds them."""
    size = path.stat().st_size
    needed = count * np.dtype(dtype).itemsize
    if count <= 0 or start + needed > size:
        raise UnreadableFileError(f"the header declares {needed} bytes of data from byte {start}; the file has {max(0, size - start)}", path)
    with open(path, "rb") as handle:
        handle.seek(start)
        return np.frombuffer(handle.read(needed), dtype=dtype, count=count).astype(np.dtype(dtype).newbyteorder("="))  # native order


def _frame_positions(pixels: tuple[int, int], size: tuple[float, float], centre: tuple[float, float], angle: float) -> Ancillary:
    """Positions Y, X of a scan frame: a grid, or with the frame turned clockwise by `angle` (degrees) a table."""
    (columns, rows), (width, height), (x0, y0) = pixels, size, centre
    u = -width / 2 + np.arange(columns) * width / columns
    v = -height / 2 + np.arange(rows) * height / rows
    if angle == 0:
        return Ancillary([Dimension("Y", "m", y0 + v), Dimension("X", "m", x0 + u)])
    indices = grid_indices([rows, columns])
    frame_v, frame_u = v[indices[:, 0]], u[indices[:, 1]]
    theta = np.deg2rad(angle)
    x = x0 + frame_u * np.cos(theta) + frame_v * np.sin(theta)
    y = y0 - frame_u * np.sin(theta) + frame_v * np.cos(theta)
    return Ancillary.from_points(["Y", "X"], ["m", "m"], np.column_stack([y, x]))


def _sxm_header(text: str) -> dict[str, str]:
    """``:KEY:`` lines, each followed by its value lines."""
    header: dict[str, str] = {}
    key = None
    for line in text.splitlines():
        if line.startswith(":") and line.endswith(":") and len(line) > 1:
            key = line[1:-1]
            header[key] = ""
        elif key is not None:
            header[key] = f"{header[key]}\n{line}" if header[key] else line
    return header


def read_sxm(path: Path, positions: str = "tip") -> list[Dataset]:
    """Every channel and direction of a scan; see the module text."""
    raw_header, after = _header_bytes(path, SXM_HEADER_END)
    header = _sxm_header(raw_header.decode("latin-1"))
    try:
        columns, rows = (int(value) for value in header["SCAN_PIXELS"].split())
        width, height = (_number(value, "SCAN_RANGE", path) for value in header["SCAN_RANGE"].split())
        x0, y0 = (_number(value, "SCAN_OFFSET", path) for value in header["SCAN_OFFSET"].split())
        angle = _number(header.get("SCAN_ANGLE", "0").strip() or "0", "SCAN_ANGLE", path)
        kind, order = header["SCANIT_TYPE"].split()
        info = [line.split("\t") for line in header["DATA_INFO"].strip().splitlines()]
    except (KeyError, ValueError) as error:
        raise UnreadableFileError(f"the .sxm header lacks or garbles SCAN_PIXELS, SCAN_RANGE, SCAN_OFFSET, SCANIT_TYPE or DATA_INFO ({error})", path) from None
    if kind != "FLOAT" or order not in BYTE_ORDERS or columns < 1 or rows < 1:
        raise UnreadableFileError(f"SCANIT_TYPE {kind} {order} with {columns} × {rows} pixels: only FLOAT data in MSBFIRST or LSBFIRST order is defined", path)
    titles, *channels = [[cell.strip() for cell in row if cell.strip()] for row in info]
    if titles[:4] != ["Channel", "Name", "Unit", "Direction"] or any(len(channel) < 4 for channel in channels):
        raise UnreadableFileError(f"DATA_INFO does not list Channel, Name, Unit, Direction for each channel ({titles})", path)
    planes = [(name, unit, direction) for _channel, name, unit, directions, *_rest in channels for direction in (("forward", "backward") if directions == "both" else (directions,))]
    with open(path, "rb") as handle:
        handle.seek(after)
        mark = handle.read(64).find(SXM_DATA_MARK)
    if mark < 0:
        raise UnreadableFileError("no data mark (0x1A 0x04) after :SCANIT_END:", path)
    values = _block(path, after + mark + len(SXM_DATA_MARK), f"{BYTE_ORDERS[order]}f4", len(planes) * rows * columns).reshape(len(planes), rows, columns)
    frame = _frame_positions((columns, rows), (width, height), (x0, y0), 0.0 if positions == "frame" else angle)
    scanned_down = header.get("SCAN_DIR", "up").strip().lower() == "down"
    metadata = {"nanonis": {"header": header, "positions": positions, "frame_angle_deg": angle}}
    datasets = []
    for (name, unit, direction), plane in zip(planes, values):
        plane = plane[::-1] if scanned_down else plane  # lines in order of increasing Y
        plane = plane[:, ::-1] if direction == "backward" else plane  # backward lines were stored as scanned, right to left
        data = np.ascontiguousarray(plane).reshape(rows * columns, 1)
        datasets.append(Dataset(data, frame, Ancillary([placeholder_dimension()]), name=f"{name} {direction}", quantity=name, units=unit, metadata=metadata, source=f"{path}::{name} {direction}"))
    return datasets


def _dat_position(header: dict[str, str], path: Path) -> Ancillary:
    """The tip position from the header's ``X (m)`` and ``Y (m)``; USID's placeholder without them."""
    if "X (m)" in header and "Y (m)" in header:
        return Ancillary([Dimension("X", "m", [_number(header["X (m)"], "X (m)", path)]), Dimension("Y", "m", [_number(header["Y (m)"], "Y (m)", path)])])
    return Ancillary([placeholder_dimension()])


def read_dat(path: Path, positions: str = "tip") -> list[Dataset]:
    """A point spectrum: the first column is the sweep, every other column a Dataset over it
    (one tip position: `positions` has nothing to choose)."""
    text = path.read_bytes().decode("latin-1")
    head, separator, table = text.partition("[DATA]")
    if not separator:
        raise UnreadableFileError("no [DATA] line: not a complete Nanonis spectrum", path)
    header = {}
    for line in head.splitlines():
        key, tab, value = line.partition("\t")
        if tab and key.strip():
            header[key.strip()] = value.strip().rstrip("\t").strip()
    lines = [line for line in table.splitlines() if line.strip()]
    if len(lines) < 2:
        raise UnreadableFileError("the [DATA] block has no rows", path)
    labels = [label for label in lines[0].split("\t") if label.strip()]
    try:
        rows = np.array([[float(value) for value in line.split("\t") if value.strip()] for line in lines[1:]], dtype=np.float64)
    except ValueError as error:
        raise UnreadableFileError(f"a [DATA] row that is not numbers ({error})", path) from None
    if rows.ndim != 2 or rows.shape[1] != len(labels) or len(labels) < 2:
        raise UnreadableFileError(f"{len(labels)} column names over rows of {rows.shape[1] if rows.ndim == 2 else 'varying'} values", path)
    sweep_name, sweep_units = quantity_and_units(labels[0])
    sweep = Ancillary([Dimension(sweep_name, sweep_units, rows[:, 0])])
    position = _dat_position(header, path)
    names = [quantity_and_units(label) for label in labels[1:]]
    if len({name for name, _units in names}) < len(names):  # two labels that differ only in where their units are: keep them whole
        names = [(label.strip(), units) for label, (_name, units) in zip(labels[1:], names)]
    metadata = {"nanonis": {"header": header, "columns": labels}}
    return [
        Dataset(np.ascontiguousarray(rows[:, column])[np.newaxis, :], position, sweep, name=name, quantity=name, units=units, metadata=metadata, source=f"{path}::{name}")
        for column, (name, units) in enumerate(names, start=1)
    ]


def _grid_header(text: str) -> dict[str, str]:
    header = {}
    for line in text.splitlines():
        key, equals, value = line.partition("=")
        if equals:
            header[key.strip()] = value.strip().strip('"')
    return header


def read_3ds(path: Path, positions: str = "tip") -> list[Dataset]:
    """A spectroscopy grid: each channel over the tip positions; see the module text."""
    raw_header, after = _header_bytes(path, GRID_HEADER_END)
    header = _grid_header(raw_header.decode("latin-1"))
    try:
        columns, rows = (int(value) for value in header["Grid dim"].lower().split("x"))
        points = int(header["Points"])
        channels = [channel for channel in header["Channels"].split(";") if channel]
        parameters = [name for name in header.get("Fixed parameters", "").split(";") + header.get("Experiment parameters", "").split(";") if name]
        parameter_count = int(header["# Parameters (4 byte)"])
    except (KeyError, ValueError) as error:
        raise UnreadableFileError(f"the .3ds header lacks or garbles Grid dim, Points, Channels or # Parameters ({error})", path) from None
    if min(columns, rows, points, parameter_count) < 1 or len(parameters) != parameter_count or not channels:
        raise UnreadableFileError(f"{columns} × {rows} points of {points} values, {parameter_count} parameters for the names {parameters}, channels {channels}", path)
    with open(path, "rb") as handle:
        handle.seek(after)
        start = after + (2 if handle.read(2) == b"\r\n" else 0)
    per_point = parameter_count + len(channels) * points
    block = _block(path, start, ">f4", rows * columns * per_point).reshape(rows * columns, per_point)
    point_parameters = {name: block[:, index].astype(np.float64) for index, name in enumerate(parameters)}
    settings = header.get("Grid settings", "").split(";")
    if len(settings) != 5:
        raise UnreadableFileError(f"Grid settings are {header.get('Grid settings')!r}, not centre x;y;width;height;angle", path)
    x0, y0, width, height, angle = (_number(value, "Grid settings", path) for value in settings)
    if positions == "tip" and "X (m)" in point_parameters and "Y (m)" in point_parameters:
        grid = Ancillary.from_points(["Y", "X"], ["m", "m"], np.column_stack([point_parameters["Y (m)"], point_parameters["X (m)"]]))
    else:
        grid = _frame_positions((columns, rows), (width, height), (x0, y0), 0.0 if positions == "frame" else angle)
    sweep_name, sweep_units = quantity_and_units(header.get("Sweep Signal", "Sweep"))
    first, last = (float(point_parameters.get(key, np.array([np.nan]))[0]) for key in ("Sweep Start", "Sweep End"))
    if not (np.isfinite(first) and np.isfinite(last)):
        raise UnreadableFileError(f"the first point's Sweep Start / Sweep End are {first} / {last}", path)
    sweep = Ancillary([Dimension(sweep_name, sweep_units, np.linspace(first, last, points))])
    metadata = {"nanonis": {"header": header, "point_parameters": point_parameters, "positions": positions, "frame_angle_deg": angle}}
    datasets = []
    for number, channel in enumerate(channels):
        quantity, units = quantity_and_units(channel)
        values = np.ascontiguousarray(block[:, parameter_count + number * points : parameter_count + (number + 1) * points])
        datasets.append(Dataset(values, grid, sweep, name=quantity, quantity=quantity, units=units, metadata=metadata, source=f"{path}::{quantity}"))
    return datasets


def kind_of(head: bytes, path: Path) -> str | None:
    """Which Nanonis file the first bytes say this is: ``sxm``, ``3ds``, ``dat`` or None."""
    if head.startswith(SXM_MAGIC):
        return "sxm"
    if head.startswith(GRID_MAGIC):
        return "3ds"
    if head.startswith(DAT_MAGIC) or (path.suffix.lower() == ".dat" and b"\n[DATA]" in head and b"\t" in head):
        return "dat"
    return None


READERS = {"sxm": read_sxm, "3ds": read_3ds, "dat": read_dat}


class NanonisFormat(Format):
    name = "nanonis"
    description = "Nanonis .sxm scans, .dat point spectra and .3ds spectroscopy grids (read-only)"
    extensions = (".sxm", ".3ds")  # .dat only by content: SPEC and column text share it
    profile = Profile()
    read_options = {"positions": "tip (default: the true positions, non-grid for a turned frame) or frame (the frame's own grid about its centre, as HyperSpy needs; the angle in metadata)"}

    def sniff(self, head: bytes, path: Path) -> int:
        return 2 if kind_of(head, path) else 0

    def read(self, path: Path, *, lazy: bool = False, positions: str = "tip") -> list[Dataset]:
        if positions not in ("tip", "frame"):
            raise UnknownOptionError(f"-r positions={positions!r}: the choices are tip and frame", path)
        with open(path, "rb") as handle:
            kind = kind_of(handle.read(4096), path)
        if kind is None:
            raise UnreadableFileError("not a Nanonis .sxm, .3ds or .dat file (no header it starts with)", path)
        try:
            return READERS[kind](path, positions)
        except ModelError as error:
            raise UnreadableFileError(f"the Nanonis {kind} header does not describe its data: {error.message}", path) from None


FORMAT = NanonisFormat()
