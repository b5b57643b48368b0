"""The format registry: the `Format` base class, `register()`, discovery and detection.

Built-in formats are the modules of `usidbridge.converters`, each exposing a module-level
``FORMAT``; third-party formats register through the entry-point group ``usidbridge.formats``
(an entry point resolving to a `Format` instance or class). The hub never imports a converter by
name. Detection reads the first bytes of a file and asks every format to score them; the extension
only breaks ties or decides when no content matched.
"""

from __future__ import annotations

import importlib
import logging
import importlib.util
import pkgutil
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from .errors import IS_A_FOLDER, MissingDependencyError, UnknownFormatError, UnknownOptionError, UnreadableFileError, UnsupportedFeatureError
from .hdf import DAMAGED_HDF5, sniffing

if TYPE_CHECKING:
    from .model import Dataset

ENTRY_POINT_GROUP = "usidbridge.formats"
log = logging.getLogger("usidbridge")
HEAD_BYTES = 4096
SURE = 2  # the highest sniff score: the content is the format's own

Support = Literal["carries", "encodes", "refuses", "loses"]

WAYS_OUT = {
    "non_uniform": "resample to a uniform axis, or write h5usid, nexus or netcdf, which keep non-uniform axes",
    "complex": "write the real and imaginary parts as two datasets, or use h5usid or netcdf",
    "compound": "split the compound fields into one dataset each (--split-compound where offered)",
    "several_datasets": "pick one with --dataset PATH, or write one file per dataset",
    "nested_metadata": "flatten the metadata, or use h5usid, nexus or netcdf",
    "non_grid": "non-grid (sparse) positions are kept by h5usid and netcdf",
    "many_dims": "slice the data to fewer dimensions, or use h5usid, nexus or netcdf",
}


@dataclass(frozen=True)
class Profile:
    """What a format can carry of the USID model; each feature is carried, encoded, refused or lost.

    `dims` covers dim names, units and values; `units` the quantity's units; `dtypes` the exact
    numeric type; the others say how the format takes the USID features a dataset may use.

    `max_dims` bounds the number of dims that vary (size > 1; USID's size-1 placeholders do not
    count; None: no bound). `exact_floats` says whether the
    round trip keeps floats bitwise.
    """

    dims: Support = "carries"
    units: Support = "carries"
    dtypes: Support = "carries"
    non_uniform: Support = "carries"
    complex: Support = "carries"
    compound: Support = "carries"
    several_datasets: Support = "carries"
    nested_metadata: Support = "carries"
    non_grid: Support = "carries"
    max_dims: int | None = None
    exact_floats: bool = True

    def support(self) -> dict[str, Support]:
        """Feature name → support, for tables and reports."""
        return {field.name: getattr(self, field.name) for field in fields(self) if field.type == "Support"}


def features_of(datasets: Sequence[Dataset]) -> dict[str, str]:
    """Which profile features these datasets use, each with a short description of where."""
    used: dict[str, str] = {}
    if len(datasets) > 1:
        used["several_datasets"] = f"{len(datasets)} datasets"
    for dataset in datasets:
        dtype = dataset.dtype
        if dtype.fields:
            used.setdefault("compound", f"{dataset.name}: compound dtype {dtype}")
        if dtype.kind == "c" or any(field.kind == "c" for field, *_ in (dtype.fields or {}).values()):
            used.setdefault("complex", f"{dataset.name}: complex dtype {dtype}")
        if any(isinstance(value, dict) for value in dataset.metadata.values()):
            used.setdefault("nested_metadata", f"{dataset.name}: nested metadata")
        if not dataset.is_grid:
            used.setdefault("non_grid", f"{dataset.name}: positions or spectra are not a full grid")
            continue
        uneven = [dim.name for dim in dataset.dims if not dim.is_uniform]
        if uneven:
            used.setdefault("non_uniform", f"{dataset.name}: non-uniform dims {uneven}")
    return used


class Format:
    """Base class of a format: subclass it in a converter module and expose an instance as ``FORMAT``.

    Override `sniff`, `read` and `write` (a format that only reads leaves `write` alone), and
    declare every keyword `read` and `write` take in `read_options` / `write_options` (name → one
    line of help): the hub refuses any other, so no option is silently ignored. Paths given to
    `write` are temporary names in the target folder; the hub renames them on success.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    extensions: ClassVar[tuple[str, ...]] = ()
    dependency: ClassVar[str | None] = None
    extra: ClassVar[str | None] = None
    profile: ClassVar[Profile] = Profile()
    read_options: ClassVar[dict[str, str]] = {}
    write_options: ClassVar[dict[str, str]] = {}
    # A module-level function(path) that opens the file with the format's native library and touches
    # its structure; run in a child first (`usidbridge.isolation.probed`), so that a crash in that
    # library on a damaged file is an error, not the end of the process. None: HDF5 files get
    # `usidbridge.hdf.touch_structure`, others nothing.
    structure_probe: ClassVar[Callable[[str], Any] | None] = None

    def sniff(self, head: bytes, path: Path) -> int:
        """How sure the format is that the file is its own: 0 no, 1 the container matches, 2 the content does."""
        return 0

    def probe(self, path: Path) -> bool:
        """A deeper look, asked only when no format recognised the first bytes: True when the file is this format's.

        For formats recognised by a library rather than by magic bytes (FabIO's many detector formats).
        """
        return False

    def decodes_natively(self, path: Path, options: dict[str, Any]) -> bool:
        """Whether reading this file runs compiled code on its bytes that no check of the file can make
        safe (a decoder that trusts the sizes it reads): `usidbridge.api.read` then reads it whole in a
        child process, so that a crash there is an error naming the file, unless told ``isolate=False``."""
        return False

    def check_options(self, kind: Literal["read", "write"], options: dict[str, Any], path: str | Path | None = None) -> None:
        """Refuse an option this format's reader or writer does not declare, listing the ones it does."""
        declared = self.read_options if kind == "read" else self.write_options
        unknown = sorted(set(options) - set(declared))
        if unknown:
            valid = ", ".join(sorted(declared)) or "none"
            role = "reader" if kind == "read" else "writer"
            raise UnknownOptionError(f"the {self.name} {role} has no option {unknown[0]!r} (its options: {valid})", path)

    def read(self, path: Path, *, lazy: bool = False, **options: Any) -> list[Dataset]:
        raise NotImplementedError

    def write(self, datasets: Sequence[Dataset], path: Path, **options: Any) -> None:
        raise NotImplementedError

    @property
    def can_read(self) -> bool:
        return type(self).read is not Format.read

    @property
    def can_write(self) -> bool:
        return type(self).write is not Format.write

    @property
    def installed(self) -> bool:
        """True when the format's library can be imported (formats without one are always installed)."""
        return self.dependency is None or importlib.util.find_spec(self.dependency) is not None

    def require(self) -> None:
        """Raise `MissingDependencyError` with the install command when the library is missing."""
        if not self.installed:
            raise MissingDependencyError(
                f"the {self.name} format needs the package {self.dependency!r}: "
                f"pip install 'usidbridge[{self.extra or self.name}]'"
            )

    def check_writable(self, datasets: Sequence[Dataset]) -> None:
        """Refuse, naming the feature and the way out, what the profile says this format cannot carry."""
        support = self.profile.support()
        for feature, where in features_of(datasets).items():
            if support.get(feature) == "refuses":
                raise UnsupportedFeatureError(f"{self.name} cannot carry {where}; {WAYS_OUT[feature]}")
        if self.profile.max_dims is not None:
            for dataset in datasets:
                varying = [dim.name for dim in dataset.dims if dim.size > 1] if dataset.is_grid else []
                if len(varying) > self.profile.max_dims:
                    raise UnsupportedFeatureError(
                        f"{self.name} carries at most {self.profile.max_dims} dims, {dataset.name} varies "
                        f"{len(varying)} {varying}; {WAYS_OUT['many_dims']}"
                    )

    def __repr__(self) -> str:
        return f"<Format {self.name}>"


_REGISTRY: dict[str, Format] = {}
_DISCOVERED = False
_PLUGINS_LOADED = False
_PLUGINS: set[str] = set()  # names of the formats registered from entry points


def register(format: Format | type[Format], *, replace: bool = False) -> Format:
    """Add a format to the registry (an instance or a class); returns the registered instance."""
    instance = format() if isinstance(format, type) else format
    if not isinstance(instance, Format) or not instance.name:
        raise TypeError(f"{format!r} is not a Format with a name")
    if instance.name in _REGISTRY and not replace and _REGISTRY[instance.name] is not instance:
        raise ValueError(f"a format named {instance.name!r} is already registered")
    _REGISTRY[instance.name] = instance
    return instance


def _discover(plugins: bool = False) -> None:
    """Register the built-in converters once; with `plugins`, the entry-point plugins too, once.

    Plugins come after the built-ins, so they never take a built-in's name, and a built-in sure of a
    file with its extension wins before any plugin is asked (`detect`). They are therefore loaded
    only when a lookup gets past the built-ins: reading the installed packages' entry points costs
    a fresh process 35 ms, a tenth of a small conversion.
    """
    global _DISCOVERED, _PLUGINS_LOADED
    if not _DISCOVERED:
        _DISCOVERED = True
        package = importlib.import_module("usidbridge.converters")
        for module_info in sorted(pkgutil.iter_modules(package.__path__), key=lambda info: info.name):
            module = importlib.import_module(f"{package.__name__}.{module_info.name}")
            if isinstance(getattr(module, "FORMAT", None), Format):
                register(module.FORMAT)
    if plugins and not _PLUGINS_LOADED:
        _PLUGINS_LOADED = True
        from importlib.metadata import entry_points

        for entry_point in entry_points(group=ENTRY_POINT_GROUP):
            try:
                plugin = entry_point.load()
                if (plugin() if isinstance(plugin, type) else plugin).name not in _REGISTRY:
                    _PLUGINS.add(register(plugin).name)
            except Exception as error:  # a broken plugin must not break the tool
                warnings.warn(f"format plugin {entry_point.name!r} could not be loaded: {error}", stacklevel=2)


def _in_order() -> Iterator[Format]:
    """Every format, built-ins first; the plugins are loaded only when the iteration reaches them."""
    seen = 0
    for plugins in (False, True):
        _discover(plugins)
        registered = list(_REGISTRY.values())
        yield from registered[seen:]
        seen = len(registered)


def formats() -> list[Format]:
    """Every registered format, built-in and plugin, each telling whether its library is `installed`."""
    _discover(plugins=True)
    return list(_REGISTRY.values())


def get(name: str) -> Format:
    """The format registered under `name` (case-insensitive), or whose extension it is (``tif``,
    ``nc``, ``nxs``, ``hspy``; ``h5`` is h5USID): the short names users type."""
    _discover()
    key = name.lower().lstrip(".")
    format = _REGISTRY.get(key)
    if format is None:
        _discover(plugins=True)  # a plugin's name, or an extension
        claiming = [candidate for candidate in _REGISTRY.values() if f".{key}" in candidate.extensions]
        format = _REGISTRY.get(key) or next((candidate for candidate in claiming if candidate.can_write), claiming[0] if claiming else None)
    if format is None:
        raise UnknownFormatError(f"unknown format {name!r}; known formats: {', '.join(sorted(_REGISTRY))}")
    return format


def writable_names() -> str:
    """The names of the formats that write, for error messages."""
    _discover(plugins=True)
    return ", ".join(sorted(format.name for format in _REGISTRY.values() if format.can_write))


def for_extension(path: str | Path) -> Format:
    """The first writable format claiming the extension of `path`, for choosing a writer."""
    suffix = Path(path).suffix.lower()
    for format in _in_order():
        if suffix in format.extensions and format.can_write:
            return format
    writable = writable_names()
    readers = [format.name for format in _REGISTRY.values() if suffix and suffix in format.extensions]
    if readers:
        raise UnknownFormatError(f"{suffix} files are read-only here ({readers[0]} reads them); write one of: {writable}", path)
    raise UnknownFormatError(f"no format writes {suffix or 'files without an extension'!r}; pass a format name (--to): {writable}", path)


def _sniff(format: Format, head: bytes, path: Path) -> int:
    """The format's score for the file: 0 where its look into an HDF5 file meets damage (it cannot
    tell), and 0 with a warning when a plugin's sniff fails otherwise (a broken plugin must not stop
    detection); a built-in sniff failing otherwise is a bug, and raises."""
    try:
        return min(SURE, int(format.sniff(head, path)))
    except DAMAGED_HDF5:
        return 0
    except Exception as error:
        if format.name not in _PLUGINS:
            raise
        warnings.warn(f"format plugin {format.name!r} failed to look at {path}: {type(error).__name__}: {error}", stacklevel=3)
        return 0


def detect(path: str | Path) -> Format:
    """The format of an existing file, from its content first and its extension second."""
    _discover()
    path = Path(path)
    if path.is_dir():
        raise UnreadableFileError(IS_A_FOLDER, path)
    try:
        with open(path, "rb") as handle:
            head = handle.read(HEAD_BYTES)
    except OSError as error:
        raise UnreadableFileError(error.strerror or str(error), path) from None
    if not head:
        raise UnreadableFileError("the file is empty", path)
    suffix = path.suffix.lower()
    scored: list[tuple[int, bool, int, Format]] = []
    with sniffing():  # the HDF5-based formats share one open file
        for rank, format in enumerate(_in_order()):
            score = _sniff(format, head, path)
            if score > 0:
                scored.append((score, suffix in format.extensions, -rank, format))
            if score == SURE and suffix in format.extensions:
                break  # no format after this one can rank higher: ties go to the earlier
    best = max(scored, key=lambda item: item[:3]) if scored else None
    others = ", ".join(f"{format.name} ({score})" for score, _, _, format in scored if best is None or format is not best[3])
    if best is not None and best[0] >= 2:
        log.info("%s: read as %s: its content matched%s", path, best[3].name, f" (also scored: {others})" if others else "")
        return best[3]
    for format in _REGISTRY.values():
        if format.installed and format.probe(path):
            log.info("%s: read as %s: no magic bytes decided, and its library recognised the file", path, format.name)
            return format
    if best is not None:
        log.info("%s: read as %s: its container matched%s", path, best[3].name, " and so did the extension" if best[1] else "")
        return best[3]
    for format in _REGISTRY.values():
        if suffix in format.extensions and format.can_read:
            log.info("%s: read as %s: nothing in the content decided; the extension %s did", path, format.name, suffix)
            return format
    preview = head[:16].decode("latin-1").encode("unicode_escape").decode("ascii")
    raise UnknownFormatError(f"no known format recognises this file (it starts with {preview!r})", path)
