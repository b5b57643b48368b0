"""Igor Pro binary waves (``.ibw``): Asylum Research AFM images and force curves, and any other wave.

Read with igor2 (the maintained fork of the igor package), except the dimension labels: Igor stores
each as a NUL-terminated string in a 32-byte field, and igor2 joins the bytes after the NUL to the
name (``PhaseRetrace\\0race`` → ``PhaseRetracerace``), so they are cut at the NUL here.

Mapping between the file and the model:

=============================================  ================================================
wave                                           `Dataset`
=============================================  ================================================
Asylum image (note has ``ScanSize``; layers    one Dataset per layer, quantity its clean label
labelled ``HeightRetrace``, ``PhaseTrace``...)  (``HeightRetrace``); positions Y (``ScanLines``,
                                               ``SlowScanSize``) then X (``ScanPoints``,
                                               ``FastScanSize``), in m from ``YOffset`` /
                                               ``XOffset``; the placeholder spectroscopic point
units of a layer                               by what it measures (`CHANNEL_UNITS`: height,
                                               amplitude, deflection m; phase deg; potentials,
                                               user inputs V; current A); unknown: none. The
                                               wave's one data unit is not every layer's
Asylum force curve (columns labelled ``Raw``,  one Dataset per column other than ``ZSnsr``, at
``Defl``, ``ZSnsr``)                           one position, over the spectroscopic dim ``Z``
                                               (the ``ZSnsr`` values, m, approach then retract)
any other wave (1-D to 4-D)                    its own scaling: dim i is ``sfB[i] + sfA[i]·k``
                                               in ``dimUnits[i]``, named by its dim label or
                                               x, y, z, t; data units ``dataUnits``. 1-D: a
                                               spectrum; 2-D: an image (positions y, x); 3-D+:
                                               positions y, x, spectroscopic the rest
the wave note (``Key: value`` lines)           ``metadata["igor"]["note"]`` (numbers as
                                               numbers); spring constant, InvOLS and segment
                                               boundaries (``Indexes``) also in
                                               ``metadata["igor"]["force_curve"]``
wave name, version, creation time              ``metadata["igor"]``
=============================================  ================================================

Igor stores arrays column-major: the first dim (``p``, rows) is the fast one, shown as x.
"""

from __future__ import annotations

import datetime
import re
import os
import struct
from pathlib import Path
from typing import Any

import numpy as np

from usidbridge.errors import ModelError, UnreadableFileError, silenced
from usidbridge.model import Dataset, Dimension
from usidbridge.registry import Format, Profile

VERSIONS = {1: 8, 2: 16, 3: 20, 5: 64}  # IBW version → size of its binary header (bytes)
CHECKSUM_BYTES = 64 + 320 - 4  # version 5: BinHeader5 and WaveHeader5 without its wData field
LABEL_BYTES = 32  # MAX_DIM_LABEL_CHARS + 1
IGOR_EPOCH = datetime.datetime(1904, 1, 1)
DEFAULT_DIM_NAMES = ("x", "y", "z", "t")
# What an Asylum channel measures, by the first of these words in its name → its units.
CHANNEL_UNITS = (
    ("Phase", "deg"),
    ("Height", "m"),
    ("ZSensor", "m"),
    ("ZSnsr", "m"),
    ("Amplitude", "m"),
    ("Amp", "m"),
    ("Deflection", "m"),
    ("Defl", "m"),
    ("Raw", "m"),
    ("Current", "A"),
    ("Potential", "V"),
    ("Bias", "V"),
    ("Voltage", "V"),
    ("UserIn", "V"),
    ("Frequency", "Hz"),
    ("Freq", "Hz"),
)
NOTE_LINE = re.compile(r"^(?P<key>[^:\r\n]+):\s*(?P<value>.*)$")
# What igor2 raises for a file that is not the wave it declares: struct and numpy on short or
# inconsistent buffers, its own checks (ValueError), text it cannot decode.
IGOR2_FAILURES = (struct.error, ValueError, TypeError, IndexError, KeyError, EOFError, UnicodeDecodeError, OverflowError, MemoryError, AssertionError)


def _version(head: bytes) -> tuple[int, str] | None:
    """The IBW version and byte order (``<`` or ``>``) the first two bytes declare, if any."""
    if len(head) < 2:
        return None
    for order in "<>":
        (version,) = struct.unpack(f"{order}h", head[:2])
        if version in VERSIONS:
            return version, order
    return None


def looks_like_ibw(head: bytes) -> bool:
    """True for a version-5 wave (Igor 5 and later) whose headers' 16-bit words sum to zero (Igor's
    checksum over the binary header and the wave header but its data field). Older versions are
    taken by their extension."""
    found = _version(head)
    if found is None or found[0] != 5 or len(head) < CHECKSUM_BYTES:
        return False
    words = np.frombuffer(head[:CHECKSUM_BYTES], dtype=f"{found[1]}i2")
    return int(words.astype(np.int64).sum()) % 65536 == 0


# The section sizes each version's binary header declares (int32 after the int16 version; Igor's
# TN003), and where the wave header's npnts lies from the start of the file.
SECTION_SIZES = {1: (2, 1), 2: (2, 3), 3: (2, 4), 5: (4, 15)}  # version -> (offset of the first size, how many)
NPNTS_AT = {1: 8 + 42, 2: 16 + 42, 3: 20 + 42, 5: 64 + 12}


def _check_sizes(path: Path) -> None:
    """Refuse a wave whose headers declare more than the file holds, before igor2 reads it: igor2
    builds a struct format of one character per declared item (a dimension-label size of 2^30
    took 6 s and 1 GiB, and two minutes in a process with a large heap, before a MemoryError).
    The sections (wave, formula, note, units, labels, ...) must fit in the file, and the points in the wave."""
    with open(path, "rb") as handle:
        head = handle.read(64 + 320)
        size = os.fstat(handle.fileno()).st_size
    found = _version(head)
    if found is None:
        return
    version, order = found
    first, count = SECTION_SIZES[version]
    if len(head) < max(first + 4 * count, NPNTS_AT[version] + 4):
        return  # igor2 says the file is short
    sizes = struct.unpack_from(f"{order}{count}i", head, first)
    (points,) = struct.unpack_from(f"{order}i", head, NPNTS_AT[version])
    if min(sizes) < 0 or VERSIONS[version] + sum(sizes) > size:
        raise UnreadableFileError(f"the version-{version} wave's header declares sections of {list(sizes)} bytes, more than the file's {size} bytes", path)
    if not 0 <= points <= sizes[0]:
        raise UnreadableFileError(f"the wave's header declares {points} points in a wave record of {sizes[0]} bytes", path)


def _text(raw: Any) -> str:
    if isinstance(raw, np.ndarray):
        raw = b"".join(raw.ravel().tolist())
    return raw.split(b"\x00", 1)[0].decode("latin-1").strip() if isinstance(raw, bytes) else str(raw)


def _dim_labels(path: Path, loaded: dict[str, Any]) -> list[list[str]]:
    """Per dim, its labels as Igor wrote them: [dim label, label of index 0, 1, ...], each cut at its NUL."""
    bin_header, version = loaded["wave"]["bin_header"], loaded["version"]
    sizes = bin_header.get("dimLabelsSize")
    if version != 5 or sizes is None or not np.any(sizes):
        return [[] for _ in range(4)]
    start = VERSIONS[5] + int(bin_header["wfmSize"]) + int(bin_header["formulaSize"]) + int(bin_header["noteSize"])
    start += int(bin_header["dataEUnitsSize"]) + int(np.sum(bin_header["dimEUnitsSize"]))
    with open(path, "rb") as handle:
        handle.seek(start)
        raw = handle.read(int(np.sum(sizes)))
    labels, offset = [], 0
    for size in (int(size) for size in sizes):
        block = raw[offset : offset + size]
        labels.append([_text(block[index : index + LABEL_BYTES]) for index in range(0, len(block), LABEL_BYTES)])
        offset += size
    return labels


def _value(text: str) -> Any:
    """A note value as a number when it is one, else the text."""
    try:
        return int(text) if re.fullmatch(r"[+-]?\d+", text) else float(text)
    except ValueError:
        return text


def parse_note(note: bytes) -> dict[str, Any]:
    """The wave note's ``Key: value`` lines (Asylum writes hundreds; a repeated key keeps its last value)."""
    parsed: dict[str, Any] = {}
    for line in re.split(r"\r\n|\r|\n", note.decode("latin-1")):
        match = NOTE_LINE.match(line)
        if match:
            parsed[match["key"].strip()] = _value(match["value"].strip())
    return parsed


def channel_units(name: str) -> str:
    """The units of an Asylum channel by what it measures (`CHANNEL_UNITS`); unknown: none."""
    for word, units in CHANNEL_UNITS:
        if word.lower() in name.lower():
            return units
    return ""


def _number(note: dict[str, Any], key: str, path: Path) -> float:
    value = note.get(key)
    if not isinstance(value, (int, float)) or not np.isfinite(value):
        raise UnreadableFileError(f"the Asylum note's {key!r} is {value!r}, not a number", path)
    return float(value)


def _asylum_image(data: np.ndarray, names: list[str], note: dict[str, Any], metadata: dict[str, Any], path: Path) -> list[Dataset]:
    """One Dataset per layer: positions Y, X in m from the note's scan size, points and offsets."""
    columns, lines = data.shape[0], data.shape[1]
    x = Dimension("X", "m", _number(note, "XOffset", path) + np.linspace(0.0, _number(note, "FastScanSize", path), columns))
    y = Dimension("Y", "m", _number(note, "YOffset", path) + np.linspace(0.0, _number(note, "SlowScanSize", path), lines))
    layers = data.reshape(columns, lines, -1)
    datasets = []
    for index, name in enumerate(names):
        image = np.ascontiguousarray(layers[:, :, index].T)  # Igor's [x, y] → USID's (Y, X)
        datasets.append(Dataset.from_ndarray(image, [y, x], name=name, quantity=name, units=channel_units(name), metadata=metadata, source=f"{path}::{name}"))
    return datasets


def _force_curve(data: np.ndarray, names: list[str], note: dict[str, Any], metadata: dict[str, Any], path: Path) -> list[Dataset]:
    """Every column but ``ZSnsr`` over the spectroscopic ``Z`` (the ZSnsr values) at one position."""
    z = Dimension("Z", "m", data[:, names.index("ZSnsr")])
    segments = note.get("Indexes")
    metadata["igor"]["force_curve"] = {
        "spring_constant": note.get("SpringConstant"),
        "invols": note.get("InvOLS"),
        "segments": [int(index) for index in str(segments).split(",") if index.strip().lstrip("-").isdigit()] if segments is not None else [],
        "directions": note.get("Direction"),
    }
    return [
        Dataset.from_ndarray(np.ascontiguousarray(data[:, index]), [], [z], name=name, quantity=name, units=channel_units(name), metadata=metadata, source=f"{path}::{name}")
        for index, name in enumerate(names)
        if name != "ZSnsr"
    ]


def _scaled_wave(data: np.ndarray, header: dict[str, Any], labels: list[list[str]], metadata: dict[str, Any], name: str, path: Path) -> list[Dataset]:
    """Any wave by its own scaling; see the module text."""
    dims = []
    for axis, size in enumerate(data.shape):
        label = labels[axis][0] if labels[axis] and labels[axis][0] else DEFAULT_DIM_NAMES[axis]
        units = _text(header["dimUnits"][axis]) if "dimUnits" in header else ""
        dims.append(Dimension.uniform(label, units, size, offset=float(header["sfB"][axis]), scale=float(header["sfA"][axis])))
    quantity, units = name or "Intensity", _text(header.get("dataUnits", b""))
    if data.ndim == 1:
        return [Dataset.from_ndarray(data, [], dims, name=quantity, quantity=quantity, units=units, metadata=metadata, source=str(path))]
    order = [1, 0, *range(2, data.ndim)]  # Igor's (x, y, ...) → positions (y, x), then the rest
    array = np.ascontiguousarray(np.transpose(data, order))
    dims = [dims[axis] for axis in order]
    return [Dataset.from_ndarray(array, dims[:2], dims[2:], name=quantity, quantity=quantity, units=units, metadata=metadata, source=str(path))]


def read_file(path: Path) -> list[Dataset]:
    """The datasets of one Igor binary wave; see the module text for the mapping."""
    from igor2 import binarywave

    _check_sizes(path)
    try:
        with silenced("igor2"):  # it logs what it then raises: the error below says it once
            loaded = binarywave.load(str(path))
        wave = loaded["wave"]
        header, data = wave["wave_header"], np.asarray(wave["wData"])
        labels = _dim_labels(path, loaded)
    except IGOR2_FAILURES as error:
        raise UnreadableFileError(f"igor2 cannot read this Igor binary wave ({type(error).__name__}: {error})", path) from None
    if data.dtype.kind not in "biufc" or data.size == 0 or data.ndim > 4:
        raise UnreadableFileError(f"the wave holds {data.dtype} data of shape {data.shape}: not numbers USID can hold", path)
    note = parse_note(wave.get("note") or b"")
    name = _text(header.get("bname", b""))
    created = IGOR_EPOCH + datetime.timedelta(seconds=int(header.get("creationDate", 0)))
    metadata = {"igor": {"wave_name": name, "version": int(loaded["version"]), "created": created.isoformat(), "note": note}}
    try:
        if data.ndim == 2 and "ZSnsr" in labels[1][1:]:
            return _force_curve(data, labels[1][1:], note, metadata, path)
        if data.ndim in (2, 3) and "FastScanSize" in note and "SlowScanSize" in note:
            layers = labels[2][1:] if data.ndim == 3 else []
            names = layers if len(layers) == (data.shape[2] if data.ndim == 3 else 1) and all(layers) else [name or "Height"]
            return _asylum_image(data, names, note, metadata, path)
        return _scaled_wave(data, header, labels, metadata, name, path)
    except ModelError as error:
        raise UnreadableFileError(f"the wave's scaling does not describe its data: {error.message}", path) from None


class IgorFormat(Format):
    name = "igor"
    description = "Igor Pro binary waves (.ibw): Asylum Research AFM images and force curves, any Igor wave (read-only)"
    extensions = (".ibw",)
    dependency = "igor2"
    extra = "spm"
    profile = Profile()

    def sniff(self, head: bytes, path: Path) -> int:
        if looks_like_ibw(head):
            return 2
        return 1 if path.suffix.lower() in self.extensions and _version(head) else 0

    def read(self, path: Path, *, lazy: bool = False) -> list[Dataset]:
        return read_file(path)


FORMAT = IgorFormat()
