"""Anasys / Bruker AFM-IR documents (``.axz``: gzip-compressed XML; ``.axd``: the XML itself), parsed here.

No Python library reads them (anasyspythontools is unpublished on the package index); the layout
is plain XML: a ``Document`` of ``HeightMaps``, each a ``HeightMap`` with its size, resolution,
units and its values as base64 little-endian float32.

Mapping between the file and the model:

=============================================  ================================================
document                                       `Dataset`
=============================================  ================================================
each ``HeightMap``                             one Dataset, name and quantity its ``Label``
                                               (``Height 1``, ``IR Amplitude 3``)
``Resolution`` X × Y, ``SampleBase64``          positions Y then X, rows as stored
``Position`` (the map's centre, µm),           pixel k at ``centre - size / 2 + k · size /
``Size`` (µm)                                  resolution``, in m
``Units`` with ``UnitPrefix`` (``n`` + ``m``)  units in SI (m), the values scaled to them
``DataChannel``, ``Rotation``, ``Tags``,       ``metadata["anasys"]`` (the rotation is the
``TimeStamp``                                  map's on screen: positions are not turned)
=============================================  ================================================

IR spectra (``RenderedSpectra``) are not images and are not read yet.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import zlib
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import numpy as np

from usidbridge.errors import ModelError, UnreadableFileError
from usidbridge.model import Dataset, Dimension
from usidbridge.registry import Format, Profile
from usidbridge.units import to_si

GZIP_MAGIC = b"\x1f\x8b"
MAX_XML_BYTES = 2**32  # a 4 GiB document: far beyond any instrument's, short of a decompression bomb
MICROMETRE = 1e-6


def _name(element: ElementTree.Element) -> str:
    return element.tag.rsplit("}", 1)[-1]


def _child(element: ElementTree.Element, name: str) -> ElementTree.Element | None:
    return next((child for child in element if _name(child) == name), None)


def _children(element: ElementTree.Element, name: str) -> list[ElementTree.Element]:
    found = _child(element, name)
    return list(found) if found is not None else []


def _text(element: ElementTree.Element, *path: str) -> str:
    for name in path:
        found = _child(element, name)
        if found is None:
            return ""
        element = found
    return (element.text or "").strip()


def _number(element: ElementTree.Element, path: Path, *names: str) -> float:
    text = _text(element, *names)
    try:
        value = float(text)
    except ValueError:
        raise UnreadableFileError(f"a HeightMap's {'/'.join(names)} is {text!r}, not a number", path) from None
    if not np.isfinite(value):
        raise UnreadableFileError(f"a HeightMap's {'/'.join(names)} is {text!r}", path)
    return value


def _document(path: Path) -> ElementTree.Element:
    """The XML document, decompressed in bounded steps."""
    with open(path, "rb") as handle:
        compressed = handle.read(2) == GZIP_MAGIC
    try:
        if compressed:
            with gzip.open(path, "rb") as stream:
                xml = stream.read(MAX_XML_BYTES + 1)
            if len(xml) > MAX_XML_BYTES:
                raise UnreadableFileError(f"the document decompresses to more than {MAX_XML_BYTES // 2**30} GiB", path)
        else:
            xml = path.read_bytes()
        return ElementTree.fromstring(xml)
    except (OSError, EOFError, zlib.error) as error:
        raise UnreadableFileError(f"the gzip stream is damaged or cut ({error})", path) from None
    except ElementTree.ParseError as error:
        raise UnreadableFileError(f"the document is not well-formed XML ({error})", path) from None


def _height_map(element: ElementTree.Element, number: int, path: Path) -> Dataset:
    label = element.get("Label") or f"Map {number}"
    columns, rows = int(_number(element, path, "Resolution", "X")), int(_number(element, path, "Resolution", "Y"))
    try:
        raw = base64.b64decode(_text(element, "SampleBase64"), validate=True)
    except (binascii.Error, ValueError) as error:
        raise UnreadableFileError(f"{label}: SampleBase64 is not base64 ({error})", path) from None
    if columns < 1 or rows < 1 or len(raw) != 4 * columns * rows:
        raise UnreadableFileError(f"{label}: {len(raw)} bytes of samples for a resolution of {columns} × {rows} float32 values", path)
    units, factor = to_si(_text(element, "UnitPrefix") + _text(element, "Units"))
    values = np.frombuffer(raw, "<f4").reshape(rows, columns).astype(np.float64) * factor
    width, height = (_number(element, path, "Size", axis) * MICROMETRE for axis in ("X", "Y"))
    x0, y0 = (_number(element, path, "Position", axis) * MICROMETRE for axis in ("X", "Y"))
    x = Dimension.uniform("X", "m", columns, offset=x0 - width / 2, scale=width / columns)
    y = Dimension.uniform("Y", "m", rows, offset=y0 - height / 2, scale=height / rows)
    metadata: dict[str, Any] = {"anasys": {
        "data_channel": element.get("DataChannel", ""),
        "time_stamp": _text(element, "TimeStamp"),
        "rotation": {_name(child): (child.text or "").strip() for child in _children(element, "Rotation")},
        "tags": {(child.get("Name") or _name(child)): (child.get("Value") or (child.text or "").strip()) for child in _children(element, "Tags")},
    }}
    return Dataset.from_ndarray(values, [y, x], name=label, quantity=label, units=units, metadata=metadata, source=f"{path}::{label}")


def read_file(path: Path) -> list[Dataset]:
    """Every height map of an Anasys document; see the module text."""
    document = _document(path)
    maps = _child(document, "HeightMaps")
    elements = [element for element in (maps if maps is not None else []) if _name(element) == "HeightMap"]
    if not elements:
        raise UnreadableFileError("no HeightMap in the document (IR spectra alone are not read yet)", path)
    try:
        return [_height_map(element, number, path) for number, element in enumerate(elements)]
    except ModelError as error:
        raise UnreadableFileError(f"a HeightMap does not fit its sizes: {error.message}", path) from None


class AnasysFormat(Format):
    name = "anasys"
    description = "Anasys / Bruker AFM-IR documents (.axz, .axd): every height map (read-only)"
    extensions = (".axz", ".axd")
    profile = Profile()

    def sniff(self, head: bytes, path: Path) -> int:
        if path.suffix.lower() == ".axz" and head.startswith(GZIP_MAGIC):
            return 2
        return 2 if b"anasysinstruments" in head[:2048].replace(b"\x00", b"") else 0

    def read(self, path: Path, *, lazy: bool = False) -> list[Dataset]:
        return read_file(path)


FORMAT = AnasysFormat()
