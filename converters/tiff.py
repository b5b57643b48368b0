"""TIFF through tifffile: single images, multi-page stacks, RGB(A), ImageJ hyperstacks.

Mapping between the file and the model (one Dataset per TIFF series):

===============================================  ==============================================
TIFF                                             `Dataset`
===============================================  ==============================================
image plane Y, X                                 position dims ``Y``, ``X`` (pixel positions)
vendor calibration, as RosettaSciIO reads it     Y/X (and frame) scale, offset, units; the
(first found: FEI/Thermo ``FEI_HELIOS``/         vendor's tags in ``metadata["tiff"]["vendor"]``
``FEI_SFEG``, Zeiss SEM ``CZ_SEM``, TVIPS,       (see ``VENDORS``)
Olympus SIS, JEOL SightX XML, Gatan DM
private tags 65003-65011)
ImageJ ``unit`` + X/YResolution (pixels/unit)    Y/X scale = 1 / resolution, units (micron → µm)
ResolutionUnit centimetre                        Y/X scale in µm; inch (screen DPI) is ignored,
                                                 as RosettaSciIO does, and kept in metadata
ImageJ ``xorigin`` / ``yorigin``                 Y/X offset
other axes (pages, ImageJ T, Z, C)               spectroscopic dims ``Time`` (finterval, s),
                                                 ``Z`` (spacing, unit), ``Channel``, ``Frame``;
                                                 ``frames="position"`` makes them slow positions
RGB / RGBA samples                               compound dtype with fields red, green, blue[, alpha]
ImageJ metadata, resolution tags                 ``metadata["tiff"]``
===============================================  ==============================================

Written files are ImageJ hyperstacks when ImageJ can hold the dtype (uint8, uint16, float32, RGB
uint8) and the stack has at most three frame axes; other data goes to a plain TIFF. Both carry an
exact USID description (JSON; in ImageJ's ``Info`` or tifffile's shaped description) from which
our reader rebuilds every dim, value, quantity and unit; other programs see the calibration.
BigTIFF is used when the data exceeds 2 GiB. Complex data is refused. Compressed files (JPEG, LZW,
deflate, zstd, ...) need imagecodecs, which the ``tiff`` extra installs; without it the error says so.
"""

from __future__ import annotations

import json
import math
import struct
import re
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from usidbridge.codec import load_json, plain
from usidbridge.errors import MissingDependencyError, ModelError, UnreadableFileError, UnsupportedFeatureError, silenced
from usidbridge.images import dataset_to_stack, fill_stack, pixel_dims, read_by_rows, rgb_fields, samples_to_rgb, stack_order, stack_to_dataset
from usidbridge.lazy import read_in_parts
from usidbridge.model import Dataset, Dimension, describe, from_description
from usidbridge.registry import Format, Profile

DESCRIPTION_KEY = "usidbridge"
IMAGEJ_DTYPES = (np.dtype(np.uint8), np.dtype(np.uint16), np.dtype(np.float32))
IMAGEJ_FRAME_AXES = ("Z", "TZ", "TZC")
BIGTIFF_BYTES = 2**31
RESOLUTION_RANGE = (1e-4, 1e9)  # pixels per unit a 32-bit TIFF rational holds; beyond it only our description keeps the scale
UNITS = {"micron": "µm", "um": "µm", "\\u00B5m": "µm", "pixel": "", "pixels": ""}
FRAME_AXES = {"T": ("Time", "s"), "Z": ("Z", None), "C": ("Channel", ""), "I": ("Frame", ""), "Q": ("Frame", "")}
TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
DM_TAGS = {"X": (65003, 65009, 65006), "Y": (65004, 65010, 65007), "frame": (65005, 65011, 65008)}  # units, scale, offset
MAX_XML_CHARS = 2**20
ELECTRON = {"mass": 9.1093837015e-31, "charge": 1.602176634e-19, "c": 299792458.0, "h": 6.62607015e-34}

Axis = tuple[float, float, str]  # scale, offset, units
Calibration = dict[str, Axis]  # "Y", "X", "frame" → axis


def _resolution_scales(page: Any, factor: float = 1.0) -> tuple[float, float] | None:
    """Y/X pixel size as 1 / resolution (times `factor`), or None without usable resolution tags."""
    tags = page.tags
    if "XResolution" not in tags or "YResolution" not in tags:
        return None
    (x_num, x_den), (y_num, y_den) = tags["XResolution"].value, tags["YResolution"].value
    if not x_num or not y_num:
        return None
    return y_den / y_num * factor, x_den / x_num * factor


def _fei(tif: Any, page: Any) -> tuple[Calibration, Any] | None:
    """FEI/Thermo SEM and FIB: Scan.PixelWidth/Height, else the ion beam's HFW/VFW over the image size (m)."""
    metadata = tif.fei_metadata
    if not metadata:
        return None
    scan, beam, image = metadata.get("Scan", {}), metadata.get("IRBeam", {}), metadata.get("Image", {})
    try:
        if "PixelWidth" in scan and "PixelHeight" in scan:
            x, y = float(scan["PixelWidth"]), float(scan["PixelHeight"])
        else:
            x, y = float(beam["HFW"]) / float(image["ResolutionX"]), float(beam["VFW"]) / float(image["ResolutionY"])
    except (KeyError, ValueError, TypeError, ZeroDivisionError):
        return {}, metadata
    return {"Y": (y, 0.0, "m"), "X": (x, 0.0, "m")}, metadata


def _zeiss_sem(tif: Any, page: Any) -> tuple[Calibration, Any] | None:
    """Zeiss SEM ``CZ_SEM``: the pixel size at 1024 pixels across (item 3 of the unnamed tuple), scaled to the width (m)."""
    metadata = tif.sem_metadata
    if not metadata:
        return None
    try:
        size = float(metadata[""][3]) * 1024 / page.shape[1]
    except (KeyError, IndexError, TypeError, ValueError):
        return {}, metadata
    return {"Y": (size, 0.0, "m"), "X": (size, 0.0, "m")}, metadata


def _tvips(tif: Any, page: Any) -> tuple[Calibration, Any] | None:
    """TVIPS cameras: PixelSizeX/Y (nm), else the resolution tags in pixels per cm (m)."""
    metadata = tif.tvips_metadata
    if not metadata:
        return None
    if "PixelSizeX" in metadata and "PixelSizeY" in metadata:
        return {"Y": (float(metadata["PixelSizeY"]), 0.0, "nm"), "X": (float(metadata["PixelSizeX"]), 0.0, "nm")}, metadata
    scales = _resolution_scales(page, 1e-2)
    return ({"Y": (scales[0], 0.0, "m"), "X": (scales[1], 0.0, "m")} if scales else {}), metadata


def _olympus_sis(tif: Any, page: Any) -> tuple[Calibration, Any] | None:
    """Olympus SIS: pixelsizex/y (m)."""
    metadata = tif.sis_metadata
    if not metadata:
        return None
    try:
        x, y = round(float(metadata["pixelsizex"]), 15), round(float(metadata["pixelsizey"]), 15)
    except (KeyError, TypeError, ValueError):
        return {}, metadata
    return {"Y": (y, 0.0, "m"), "X": (x, 0.0, "m")}, metadata


def _xml_dict(element: ElementTree.Element) -> Any:
    """An XML element as nested dicts of its children (text for leaves); repeated children become lists."""
    children = list(element)
    if not children:
        return (element.text or "").strip()
    result: dict[str, Any] = {}
    for child in children:
        tag = child.tag.rpartition("}")[2]
        value = _xml_dict(child)
        if tag in result:
            result[tag] = (result[tag] if isinstance(result[tag], list) else [result[tag]]) + [value]
        else:
            result[tag] = value
    return result


def _electron_wavelength(volts: float) -> float:
    """The relativistic wavelength (m) of electrons accelerated through `volts`."""
    mass, charge, c, h = ELECTRON["mass"], ELECTRON["charge"], ELECTRON["c"], ELECTRON["h"]
    return h / math.sqrt(2 * mass * charge * volts * (1 + charge * volts / (2 * mass * c**2)))


def _jeol_sightx(tif: Any, page: Any) -> tuple[Calibration, Any] | None:
    """JEOL SightX: the TemReporter XML in ImageDescription. Image mode: resolution / magnification (nm);
    diffraction: resolution / (camera length × electron wavelength) (1/nm)."""
    tags = page.tags
    if "Make" not in tags or tags["Make"].value != "JEOL Ltd." or "ImageDescription" not in tags:
        return None
    text = str(tags["ImageDescription"].value)[:MAX_XML_CHARS]
    try:
        report = _xml_dict(ElementTree.fromstring(re.sub(r"[\x00\x01]", "", text).strip()))
    except ElementTree.ParseError:
        return {}, {"ImageDescription": text}
    inch = "ResolutionUnit" in tags and int(tags["ResolutionUnit"].value) == 2
    to_metres = 0.0254 if inch else 0.01
    try:
        mode, imaging = report["Eos"]["EosMode"], report["ImageFormingSystem"]
        if mode == "eosTEM" and imaging["ModeString"] == "MAG":
            scales, units = _resolution_scales(page, to_metres / float(imaging["SelectorValue"]) * 1e9), "nm"
        elif mode == "eosTEM" and imaging["ModeString"] == "DIFF":
            camera_length = float(imaging["SelectorValue"]) / {"mm": 1000, "cm": 100}.get(imaging.get("SelectorUnitString"), 1)
            wavelength = _electron_wavelength(float(report["ElectronGun"]["AccelerationVoltage"]))
            scales, units = _resolution_scales(page, to_metres / (camera_length * wavelength * 1e9)), "1 / nm"
        else:
            return {}, report
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return {}, report
    return ({"Y": (scales[0], 0.0, units), "X": (scales[1], 0.0, units)} if scales else {}), report


def _digital_micrograph(tif: Any, page: Any) -> tuple[Calibration, Any] | None:
    """Gatan DigitalMicrograph's private tags: units, scale and offset of X, Y and the stack axis."""
    tags = {code: page.tags[code].value for code in range(65000, 65030) if code in page.tags}
    if not any(code in tags for codes in DM_TAGS.values() for code in codes):
        return None
    calibration: Calibration = {}
    for axis, (units, scale, offset) in DM_TAGS.items():
        if units in tags or scale in tags or offset in tags:
            calibration[axis] = (float(tags.get(scale, 1.0)), float(tags.get(offset, 0.0)), str(tags.get(units, "")))
    return calibration, {str(code): value for code, value in tags.items() if not isinstance(value, bytes)}


VENDORS: tuple[tuple[str, Callable[[Any, Any], tuple[Calibration, Any] | None]], ...] = (
    ("fei", _fei),
    ("zeiss_sem", _zeiss_sem),
    ("tvips", _tvips),
    ("olympus_sis", _olympus_sis),
    ("jeol_sightx", _jeol_sightx),
    ("digital_micrograph", _digital_micrograph),
)  # RosettaSciIO's order of precedence


def vendor_calibration(tif: Any, page: Any) -> tuple[Calibration, dict[str, Any]]:
    """The calibration of the first vendor whose metadata the file carries, and that vendor's raw metadata."""
    for vendor, read in VENDORS:
        found = read(tif, page)
        if found is not None:
            calibration, raw = found
            return calibration, {vendor: plain(raw)}
    return {}, {}


def _resolution(page: Any, imagej: dict[str, Any]) -> tuple[tuple[float, float], str]:
    """Y/X scale and units from the resolution tags, when they are a physical calibration."""
    tags = page.tags
    if "XResolution" not in tags or "YResolution" not in tags:
        return (1.0, 1.0), ""
    x_num, x_den = tags["XResolution"].value
    y_num, y_den = tags["YResolution"].value
    if not x_num or not y_num:
        return (1.0, 1.0), ""
    unit_code = int(tags["ResolutionUnit"].value) if "ResolutionUnit" in tags else 2
    scale = (y_den / y_num, x_den / x_num)
    if imagej.get("unit"):
        return scale, UNITS.get(imagej["unit"], imagej["unit"])
    if unit_code == 3:  # centimetre: pixels per cm
        return (scale[0] * 1e4, scale[1] * 1e4), "µm"
    return (1.0, 1.0), ""


def _frame_dims(axes: str, shape: Sequence[int], imagej: dict[str, Any], unit: str, vendor: Axis | None = None) -> list[Dimension]:
    """The dims of the axes before Y, X; `vendor` calibrates the first stack axis (Z, T or I) when given."""
    dims, used = [], set()
    for number, (letter, size) in enumerate(zip(axes, shape)):
        name, units = FRAME_AXES.get(letter, (f"Axis_{letter}", ""))
        while name in used:
            name += "_"
        used.add(name)
        scale, offset = 1.0, 0.0
        if vendor is not None and number == 0 and letter in "ZTI":
            scale, offset, units = vendor
        elif letter == "Z" and imagej.get("spacing"):
            scale, units = float(imagej["spacing"]), unit
        elif letter == "T" and imagej.get("finterval"):
            scale = float(imagej["finterval"])
        dims.append(Dimension.uniform(name, units if units is not None else "", size, offset=offset, scale=scale))
    return dims


def _array(tif: Any, path: Path, index: int, lazy: bool) -> Any:
    """The series data: lazily, memory-mapped when the file allows it (uncompressed, contiguous);
    eagerly, a series stored as it is used (contiguous, in this machine's byte order) read in parts
    at once (`read_in_parts`: 16 MiB in half tifffile's time on 2 cores), others by tifffile."""
    import tifffile

    series = tif.series[index]
    if not lazy:
        offset, dtype = series.dataoffset, np.dtype(series.dtype)
        if offset is None or not dtype.newbyteorder(tif.byteorder).isnative:
            return series.asarray()
        data = np.empty(series.shape, dtype)
        with open(path, "rb") as handle:
            read_in_parts(handle.fileno(), offset, data, str(path))
        return data
    try:
        return tifffile.memmap(path, series=index, mode="r")
    except ValueError:  # not memory-mappable: compressed, tiled, or pages apart
        return series.asarray()


def _stored_description(tif: Any, imagej: dict[str, Any], index: int, path: Path) -> dict[str, Any] | None:
    """The USID description our writer stored (ImageJ's Info, or tifffile's shaped description), if any.

    ImageJ's Info is free text other programs use too: text that is not our JSON is not a description.
    """
    if isinstance(imagej.get("Info"), str) and imagej["Info"].startswith("{"):
        try:
            info = load_json(imagej["Info"], "ImageJ's Info")
        except ModelError:
            return None
        return info.get(DESCRIPTION_KEY) if isinstance(info, dict) else None
    if tif.is_shaped and tif.shaped_metadata and index < len(tif.shaped_metadata):
        description = tif.shaped_metadata[index].get(DESCRIPTION_KEY)
        if isinstance(description, str):
            try:
                description = load_json(description, f"the usidbridge description of series {index}")
            except ModelError as error:
                raise UnreadableFileError(error.message, path) from None
        return description if isinstance(description, dict) else None
    return None


def read_series(tif: Any, path: Path, index: int, frames: str, lazy: bool) -> Dataset:
    series = tif.series[index]
    page = series.pages[0]
    imagej = dict(tif.imagej_metadata or {}) if tif.is_imagej else {}
    description = _stored_description(tif, imagej, index, path)
    array = _array(tif, path, index, lazy)
    axes = series.axes
    source = f"{path}::series{index}"
    if axes.endswith("S") and series.shape[-1] in (3, 4) and int(page.photometric) == 2:
        array, axes = samples_to_rgb(array), axes[:-1]
    if description:
        try:
            return read_by_rows(from_description(array, description, source=source), array)
        except ModelError as error:
            raise UnreadableFileError(f"{error.message} (in the usidbridge description of series {index})", path) from None
    if not axes.endswith("YX"):
        raise UnreadableFileError(f"series {index} has axes {axes!r}; usidbridge reads TIFF images whose last axes are Y, X", path)
    calibration, vendor = vendor_calibration(tif, page)
    scale, unit = _resolution(page, imagej)
    offset = (-float(imagej.get("yorigin", 0.0)) * scale[0], -float(imagej.get("xorigin", 0.0)) * scale[1])
    y, x = pixel_dims(array.shape[-2], array.shape[-1], scale, unit, offset)
    if "Y" in calibration and "X" in calibration:
        y, x = (Dimension.uniform(name, calibration[name][2], size, offset=calibration[name][1], scale=calibration[name][0]) for name, size in zip("YX", array.shape[-2:]))
    tiff_metadata = {key: plain(value) for key, value in imagej.items() if key not in ("Info", "Labels", "Ranges", "LUTs")}
    for key in ("Info", "Labels"):
        if key in imagej:
            tiff_metadata[key] = plain(imagej[key])
    for tag in ("XResolution", "YResolution", "ResolutionUnit", "Software", "DateTime", "Artist", "Model", "Make"):
        if tag in page.tags:
            tiff_metadata[tag] = plain(page.tags[tag].value if tag != "ResolutionUnit" else int(page.tags[tag].value))
    if vendor:
        tiff_metadata["vendor"] = vendor
    frame_dims = _frame_dims(axes[:-2], array.shape[:-2], imagej, unit, calibration.get("frame"))
    return read_by_rows(stack_to_dataset(array, frame_dims, y, x, frames, quantity="Intensity", units="a.u.", metadata={"tiff": tiff_metadata}, source=source), array)


def _imagej_metadata(dims: Sequence[Dimension], frame_axes: str) -> tuple[dict[str, Any], tuple[float, float] | None]:
    y, x = dims[-2], dims[-1]
    metadata: dict[str, Any] = {"axes": frame_axes + "YX"}
    resolution = None
    if y.is_uniform and x.is_uniform and all(dim.scale > 0 and RESOLUTION_RANGE[0] <= 1 / dim.scale <= RESOLUTION_RANGE[1] for dim in (y, x)):
        resolution = (1 / x.scale, 1 / y.scale)
        unit = "micron" if x.units in ("µm", "um") else x.units
        if unit and x.units == y.units and unit.isascii():  # ImageJ's description is ASCII; our description keeps any unit
            metadata["unit"] = unit
    frame_dims = [dim for dim in dims[:-2] if dim.size > 1]
    if "Z" in frame_axes:
        z = frame_dims[frame_axes.index("Z")]
        if z.is_uniform and z.scale > 0:
            metadata["spacing"] = z.scale
    if "T" in frame_axes:
        t = frame_dims[frame_axes.index("T")]
        if t.is_uniform and t.scale > 0 and t.units == "s":
            metadata["finterval"] = t.scale
    return metadata, resolution


def write_dataset(dataset: Dataset, path: Path) -> None:
    import tifffile

    if dataset.dtype.kind == "c":
        raise UnsupportedFeatureError(f"TIFF cannot hold complex data ({dataset.name}: {dataset.dtype}); write real and imaginary parts separately, or use h5usid or netcdf")
    colour = rgb_fields(dataset.dtype)
    if dataset.dtype.fields and not colour:
        raise UnsupportedFeatureError(f"TIFF holds compound data only as colour (fields red, green, blue[, alpha]); {dataset.name} has {dataset.dtype.names}")
    _, dims = dataset_to_stack(dataset)  # refuses non-grid data; nothing is read
    description = describe(dataset, stack_order(dataset))
    plane = len(dims) - 2
    frame_shape = [dim.size for axis, dim in enumerate(dims) if dim.size > 1 or axis >= plane]
    varying_frames = len(frame_shape) - 2
    base = np.dtype(dataset.dtype.fields[dataset.dtype.names[0]][0]) if colour else dataset.dtype
    shape = (*frame_shape, len(colour)) if colour else tuple(frame_shape)
    photometric = "rgb" if colour else "minisblack"
    imagej = (base in IMAGEJ_DTYPES) and varying_frames <= 3 and (not colour or base == np.uint8)
    nbytes = int(np.prod(shape)) * base.itemsize
    options: dict[str, Any] = {"photometric": photometric, "bigtiff": nbytes > BIGTIFF_BYTES and not imagej, "shape": shape, "dtype": base}
    if imagej:
        metadata, resolution = _imagej_metadata(dims, IMAGEJ_FRAME_AXES[varying_frames - 1] if varying_frames else "")
        if colour:
            metadata["axes"] += "S"
        metadata["Info"] = json.dumps({DESCRIPTION_KEY: description})
        options.update(imagej=True, metadata=metadata)
    else:
        _, resolution = _imagej_metadata(dims, "")
        options["metadata"] = {DESCRIPTION_KEY: json.dumps(description)}  # escaped: the tag is ASCII
    pixels = tifffile.memmap(path, resolution=resolution, **options)  # uncompressed and contiguous: filled in place, in one pass
    fill_stack(samples_to_rgb(pixels) if colour else pixels, dataset)
    pixels.flush()


class TiffFormat(Format):
    name = "tiff"
    description = "TIFF images and stacks, ImageJ hyperstacks (tifffile)"
    extensions = (".tif", ".tiff")
    dependency = "tifffile"
    profile = Profile(complex="refuses", compound="encodes", several_datasets="refuses", non_grid="refuses", non_uniform="encodes", nested_metadata="encodes")
    read_options = {"frames": "spectroscopic (default: a series per pixel) or position (a sequence of images)"}

    def sniff(self, head: bytes, path: Path) -> int:
        return 2 if head[:4] in TIFF_MAGIC else 0

    def read(self, path: Path, *, lazy: bool = False, frames: str = "spectroscopic") -> list[Dataset]:
        import tifffile

        try:
            with silenced("tifffile"), tifffile.TiffFile(path) as tif:
                datasets = [read_series(tif, path, index, frames, lazy) for index in range(len(tif.series))]
                return datasets if lazy else [dataset.load() for dataset in datasets]
        # tifffile checks little of a damaged file: its own error, or an assertion, or whatever Python raises on the bad values
        except (tifffile.TiffFileError, AssertionError, ValueError, OSError, KeyError, IndexError, RuntimeError, TypeError, OverflowError, ZeroDivisionError, struct.error) as error:
            if "imagecodecs" in str(error):
                raise MissingDependencyError(f"this TIFF is compressed and reading it needs the package 'imagecodecs' ({error}): pip install 'usidbridge[tiff]'", path) from None
            size = path.stat().st_size
            raise UnreadableFileError(f"damaged or truncated TIFF of {size} bytes ({error})", path) from None
        except MemoryError:
            raise UnreadableFileError(f"the TIFF declares more data than memory holds ({path.stat().st_size} bytes on disk): damaged?", path) from None

    def write(self, datasets: Sequence[Dataset], path: Path) -> None:
        write_dataset(datasets[0], path)


FORMAT = TiffFormat()
