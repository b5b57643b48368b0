"""TIFF through tifffile: single images, multi-page stacks, RGB(A), ImageJ hyperstacks.

Mapping between the file and the model (one Dataset per TIFF series):

===============================================  ==============================================
TIFF                                             `Dataset`
===============================================  ==============================================
image plane Y, X                                 position dims ``Y``, ``X`` (pixel positions)
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
BigTIFF is used when the data exceeds 2 GiB. Complex data is refused.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from usidbridge.errors import UnreadableFileError, UnsupportedFeatureError, silenced
from usidbridge.images import dataset_to_stack, pixel_dims, rgb_fields, rgb_to_samples, samples_to_rgb, stack_order, stack_to_dataset
from usidbridge.codec import describe, from_description, plain
from usidbridge.model import Dataset, Dimension
from usidbridge.registry import Format, Profile

DESCRIPTION_KEY = "usidbridge"
IMAGEJ_DTYPES = (np.dtype(np.uint8), np.dtype(np.uint16), np.dtype(np.float32))
IMAGEJ_FRAME_AXES = ("Z", "TZ", "TZC")
BIGTIFF_BYTES = 2**31
RESOLUTION_RANGE = (1e-4, 1e9)  # pixels per unit a 32-bit TIFF rational holds; beyond it only our description keeps the scale
UNITS = {"micron": "µm", "um": "µm", "\\u00B5m": "µm", "pixel": "", "pixels": ""}
FRAME_AXES = {"T": ("Time", "s"), "Z": ("Z", None), "C": ("Channel", ""), "I": ("Frame", ""), "Q": ("Frame", "")}
TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")


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


def _frame_dims(axes: str, shape: Sequence[int], imagej: dict[str, Any], unit: str) -> list[Dimension]:
    dims, used = [], set()
    for letter, size in zip(axes, shape):
        name, units = FRAME_AXES.get(letter, (f"Axis_{letter}", ""))
        while name in used:
            name += "_"
        used.add(name)
        scale = 1.0
        if letter == "Z" and imagej.get("spacing"):
            scale, units = float(imagej["spacing"]), unit
        elif letter == "T" and imagej.get("finterval"):
            scale = float(imagej["finterval"])
        dims.append(Dimension.uniform(name, units if units is not None else "", size, scale=scale))
    return dims


def _array(tif: Any, path: Path, index: int, lazy: bool) -> Any:
    """The series data: memory-mapped when lazy and the file allows it, else read."""
    if lazy:
        import tifffile

        try:
            return tifffile.memmap(path, series=index, mode="r")
        except ValueError:
            pass
    return tif.series[index].asarray()


def read_series(tif: Any, path: Path, index: int, lazy: bool, frames: str) -> Dataset:
    series = tif.series[index]
    page = series.pages[0]
    imagej = dict(tif.imagej_metadata or {}) if tif.is_imagej else {}
    description = None
    if isinstance(imagej.get("Info"), str) and imagej["Info"].startswith("{"):
        description = json.loads(imagej["Info"]).get(DESCRIPTION_KEY)
    elif tif.is_shaped and tif.shaped_metadata and index < len(tif.shaped_metadata):
        description = tif.shaped_metadata[index].get(DESCRIPTION_KEY)
        if isinstance(description, str):
            description = json.loads(description)
    array = _array(tif, path, index, lazy)
    axes = series.axes
    source = f"{path}::series{index}"
    if axes.endswith("S") and series.shape[-1] in (3, 4) and int(page.photometric) == 2:
        array, axes = samples_to_rgb(array), axes[:-1]
    if description:
        return from_description(array, description, source=source)
    scale, unit = _resolution(page, imagej)
    offset = (-float(imagej.get("yorigin", 0.0)) * scale[0], -float(imagej.get("xorigin", 0.0)) * scale[1])
    if not axes.endswith("YX"):
        raise UnreadableFileError(f"series {index} has axes {axes!r}; usidbridge reads TIFF images whose last axes are Y, X", path)
    y, x = pixel_dims(array.shape[-2], array.shape[-1], scale, unit, offset)
    tiff_metadata = {key: plain(value) for key, value in imagej.items() if key not in ("Info", "Labels", "Ranges", "LUTs")}
    for key in ("Info", "Labels"):
        if key in imagej:
            tiff_metadata[key] = plain(imagej[key])
    for tag in ("XResolution", "YResolution", "ResolutionUnit", "Software", "DateTime", "Artist", "Model", "Make"):
        if tag in page.tags:
            tiff_metadata[tag] = plain(page.tags[tag].value if tag != "ResolutionUnit" else int(page.tags[tag].value))
    frame_dims = _frame_dims(axes[:-2], array.shape[:-2], imagej, unit)
    return stack_to_dataset(array, frame_dims, y, x, frames, quantity="Intensity", units="a.u.", metadata={"tiff": tiff_metadata}, source=source)


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
    stack, dims = dataset_to_stack(dataset)
    description = describe(dataset, stack_order(dataset))
    plane = len(dims) - 2
    stack = np.asarray(stack).reshape([dim.size for axis, dim in enumerate(dims) if dim.size > 1 or axis >= plane])
    varying_frames = stack.ndim - 2
    if colour:
        stack = rgb_to_samples(stack)
    photometric = "rgb" if colour else "minisblack"
    imagej = (stack.dtype in IMAGEJ_DTYPES) and varying_frames <= 3 and (not colour or stack.dtype == np.uint8)
    options: dict[str, Any] = {"photometric": photometric, "bigtiff": stack.nbytes > BIGTIFF_BYTES and not imagej}
    if imagej:
        metadata, resolution = _imagej_metadata(dims, IMAGEJ_FRAME_AXES[varying_frames - 1] if varying_frames else "")
        if colour:
            metadata["axes"] += "S"
        metadata["Info"] = json.dumps({DESCRIPTION_KEY: description})
        tifffile.imwrite(path, stack, imagej=True, resolution=resolution, metadata=metadata, **options)
    else:
        _, resolution = _imagej_metadata(dims, "")
        tifffile.imwrite(path, stack, resolution=resolution, metadata={DESCRIPTION_KEY: json.dumps(description)}, **options)  # escaped: the tag is ASCII


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
                return [read_series(tif, path, index, lazy, frames) for index in range(len(tif.series))]
        except (tifffile.TiffFileError, ValueError, OSError, KeyError, IndexError) as error:
            size = path.stat().st_size
            raise UnreadableFileError(f"damaged or truncated TIFF of {size} bytes ({error})", path) from None

    def write(self, datasets: Sequence[Dataset], path: Path) -> None:
        write_dataset(datasets[0], path)


FORMAT = TiffFormat()
