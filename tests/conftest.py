"""Shared test set-up: the pyUSID numpy-2 shim, the real files in ../shared/data, peer imports.

USIDBRIDGE_HYPOTHESIS chooses the Hypothesis profile: "deterministic" (the default) or "explore".
With USIDBRIDGE_REQUIRE_ALL=1 (set by .ci/run) a missing peer library or data folder fails the
test instead of skipping it, so CI can never pass by skipping.
"""

import importlib
import os
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import settings

# `make test` runs every property test on the same examples each time (derandomized: a seed per test,
# no example database), so a landing is never blocked by a draw that one run happens to make;
# `make explore` draws new examples, and what it finds becomes an explicit example or a regression.
settings.register_profile("deterministic", derandomize=True, database=None, print_blob=True)
settings.register_profile("explore", derandomize=False, print_blob=True)
settings.load_profile(os.environ.get("USIDBRIDGE_HYPOTHESIS", "deterministic"))

if not hasattr(np, "product"):  # pyUSID 0.0.12 calls np.product / np.cumproduct, gone in numpy 2
    np.product = np.prod
    np.cumproduct = np.cumprod

REQUIRE_ALL = os.environ.get("USIDBRIDGE_REQUIRE_ALL") == "1"
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def fixture_files() -> list[Path]:
    """The data files of `FIXTURES`: not its Python package files, nor the __pycache__ folder an
    import of the package leaves there where Python writes bytecode."""
    return sorted(path for path in FIXTURES.iterdir() if path.is_file() and path.suffix not in (".py", ".md"))
def need(module: str):
    """Import a peer library; skip without it, or fail when every dependency is required."""
    if REQUIRE_ALL:
        return importlib.import_module(module)
    return pytest.importorskip(module)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        if REQUIRE_ALL:
            pytest.fail(f"the real files are missing: {SHARED_DATA}")
        pytest.skip(f"no {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def usid():
    return need("pyUSID")


@pytest.fixture(scope="session")
def same_units():
    """Units equal as pint reads them ("" is dimensionless): "deg" and "degree", "m" and "meter"."""
    pint = need("pint")
    units = pint.UnitRegistry()
    return lambda ours, theirs: units.Quantity(1, ours or "dimensionless") == units.Quantity(1, theirs or "dimensionless")


def assert_read_fails_cleanly(path: Path, damaged: bytes) -> None:
    """Write `damaged` to `path`: reading it is one usidbridge error naming the file, and the file is left as it was."""
    import usidbridge as ub
    from usidbridge.errors import UsidBridgeError

    path.write_bytes(damaged)
    with pytest.raises(UsidBridgeError, match=re.escape(str(path))):
        ub.read(path)
    assert path.read_bytes() == damaged


def same_metadata(mine, theirs) -> bool:
    """Metadata values equal in type and value: arrays in dtype, shape and values, NaN equal to NaN."""
    if isinstance(mine, np.ndarray) or isinstance(theirs, np.ndarray):
        return (
            isinstance(mine, np.ndarray) and isinstance(theirs, np.ndarray) and mine.dtype == theirs.dtype and mine.shape == theirs.shape
            and np.array_equal(mine, theirs, equal_nan=mine.dtype.kind in "fc")
        )
    if isinstance(mine, dict) and isinstance(theirs, dict):
        return mine.keys() == theirs.keys() and all(same_metadata(mine[key], theirs[key]) for key in mine)
    if isinstance(mine, list) and isinstance(theirs, list):
        return len(mine) == len(theirs) and all(same_metadata(a, b) for a, b in zip(mine, theirs))
    if isinstance(mine, float) and isinstance(theirs, float) and mine != mine and theirs != theirs:
        return True
    return type(mine) is type(theirs) and mine == theirs


def assert_exact_round_trip(back, original, metadata=None) -> None:
    """Data bitwise, dtype, dims (names, units, values), quantity and units; metadata as given (or equal)."""
    assert (back.quantity, back.units, back.dtype) == (original.quantity, original.units, original.dtype)
    assert back.pos.same_as(original.pos) and back.spec.same_as(original.spec)
    assert np.asarray(back.data).tobytes() == np.ascontiguousarray(original.data).tobytes()
    expected = original.metadata if metadata is None else metadata
    assert same_metadata(back.metadata, expected), (back.metadata, expected)


@pytest.fixture
def h5py_reads(monkeypatch) -> list:
    """The HDF5 paths of every dataset read through h5py during the test."""
    import h5py

    reads: list = []
    original = h5py.Dataset.__getitem__

    def spy(self, key):
        reads.append(self.name)
        return original(self, key)

    monkeypatch.setattr(h5py.Dataset, "__getitem__", spy)
    return reads
