"""Every exception usidbridge raises on purpose.

Each message names the file (when there is one) and says what to do about the problem, so the
command line can print it as one line. Anything else that escapes is a bug.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator
from os import PathLike


class UsidBridgeError(Exception):
    """Base class: a problem a user can act on, optionally tied to one file."""

    def __init__(self, message: str, path: str | PathLike[str] | None = None) -> None:
        self.message = message
        self.path = None if path is None else str(path)
        super().__init__(f"{self.path}: {message}" if self.path else message)

    def __reduce__(self) -> tuple:
        return type(self), (self.message, self.path)


class UnreadableFileError(UsidBridgeError):
    """The file cannot be read as the format it claims or was asked to be (truncated, garbage, empty)."""


IS_A_FOLDER = "is a folder, not a file"


class IsolatedFailureError(UnreadableFileError):
    """The isolated reading process crashed or hung (inside libhdf5 or netCDF-C, on a damaged file)."""


class NotUSIDError(UnreadableFileError):
    """An HDF5 file that holds no usable USID Main dataset."""


class UnknownFormatError(UsidBridgeError):
    """No registered format recognises the file or the requested format name."""


class AmbiguousFormatError(UnknownFormatError):
    """Several readers claim the file and nothing in it decides between them."""


class UnknownOptionError(UsidBridgeError):
    """A reader or writer option that the format does not declare (it would otherwise be ignored)."""


class MissingDependencyError(UsidBridgeError):
    """A format's optional library is not installed."""


class UnsupportedFeatureError(UsidBridgeError):
    """A writer refuses a feature of the data instead of silently dropping it."""


class WriteError(UsidBridgeError):
    """The output file could not be written (a full disk, a file-size limit, no permission)."""


class OutputExistsError(UsidBridgeError):
    """The output file exists and overwriting was not asked for."""


class ModelError(UsidBridgeError, ValueError):
    """A Dataset, Ancillary or Dimension was built from inconsistent parts."""


class NotAGridError(ModelError):
    """A non-grid (sparse / changing-parameter) dataset was asked for its N-D form or its dims."""


@contextlib.contextmanager
def silenced(logger_name: str) -> Iterator[None]:
    """Keep a library's log lines and warnings out of the user's output while it reads: the error
    we raise says what is wrong, once, and "signal_type 'EELS' not understood" is HyperSpy's
    business, not the user's. Verbose runs (the ``usidbridge`` logger at INFO: ``usidbridge -v``)
    let the library speak."""
    if logging.getLogger("usidbridge").isEnabledFor(logging.INFO):
        yield
        return
    logger = logging.getLogger(logger_name)
    level = logger.level
    logger.setLevel(logging.CRITICAL + 1)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)
