"""Shared test set-up: the pyUSID numpy-2 shim, the real files in ../shared/data, peer imports.

With USIDBRIDGE_REQUIRE_ALL=1 (set by .ci/run) a missing peer library or data folder fails the
test instead of skipping it, so CI can never pass by skipping.
"""

import importlib
import os
from pathlib import Path

import numpy as np
import pytest

if not hasattr(np, "product"):  # pyUSID 0.0.12 calls np.product / np.cumproduct, gone in numpy 2
    np.product = np.prod
    np.cumproduct = np.cumprod

REQUIRE_ALL = os.environ.get("USIDBRIDGE_REQUIRE_ALL") == "1"
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


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


def assert_exact_round_trip(back, original, metadata=None) -> None:
    """Data bitwise, dtype, dims (names, units, values), quantity and units; metadata as given (or equal)."""
    assert (back.quantity, back.units, back.dtype) == (original.quantity, original.units, original.dtype)
    assert back.pos.same_as(original.pos) and back.spec.same_as(original.spec)
    assert np.asarray(back.data).tobytes() == np.ascontiguousarray(original.data).tobytes()
    assert back.metadata == (original.metadata if metadata is None else metadata)


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
