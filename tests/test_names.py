"""Names, units and quantities as users and instruments write them (any text, marks formats give a
meaning of their own, very long ones): each writer carries them exactly or refuses them with one
usidbridge error, and never writes a file it cannot read back."""

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import usidbridge as ub
from usidbridge.errors import UnsupportedFeatureError, UsidBridgeError

from strategies import KEYS, TEXT

EXACT = {"h5usid": ".h5", "nexus": ".nxs", "netcdf": ".nc", "hyperspy": ".hspy", "tiff": ".tif"}
LABELS = st.one_of(TEXT, KEYS, st.sampled_from(["", " ", "/", "a/b", ".", "..", "x" * 300, "1", "Å", "\n", "a;b", "a=b", "(A)", "e\u0301", "_None_", "<undefined>"]))


def dataset_named(names, units, quantity, quantity_units) -> ub.Dataset:
    dims = [ub.Dimension(name, unit, size) for name, unit, size in zip(names, units, (2, 3, 4))]
    return ub.Dataset.from_ndarray(np.arange(24, dtype=np.float32).reshape(2, 3, 4), dims[:2], dims[2:], quantity=quantity, units=quantity_units)


@pytest.mark.parametrize("format", EXACT)
@given(names=st.lists(LABELS, min_size=3, max_size=3), units=st.lists(LABELS, min_size=3, max_size=3), quantity=LABELS, quantity_units=LABELS)
@example(names=["_None_", "<undefined>", "X"], units=["<undefined>", "_None_", ""], quantity="I", quantity_units="A")  # HyperSpy's marks for undefined and None
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_names_arrive_exactly_or_are_refused(tmp_path, format, names, units, quantity, quantity_units):
    try:
        dataset = dataset_named(names, units, quantity, quantity_units)
        path = ub.write(dataset, tmp_path / f"named{EXACT[format]}", format=format, overwrite=True)
    except UsidBridgeError:
        return
    (back,) = ub.read(path)
    assert [(dim.name, dim.units) for dim in back.dims] == [(dim.name, dim.units) for dim in dataset.dims]
    assert (back.quantity, back.units) == (dataset.quantity, dataset.units)


def test_netcdf_names_netcdf_c_refused(tmp_path):
    """DEL, C1 controls, decomposed accents and names over 256 bytes stopped netCDF-C ("illegal
    characters", "NC_MAX_NAME exceeded"); the file now takes legal names and keeps the originals."""
    dataset = dataset_named(["a\x7fb", "c\x85d", "e\u0301"], ["", "", ""], "x" * 300, "A")
    (back,) = ub.read(ub.write(dataset, tmp_path / "names.nc"))
    assert [dim.name for dim in back.dims] == ["a\x7fb", "c\x85d", "e\u0301"] and back.quantity == "x" * 300


@pytest.mark.parametrize("quantity, units", [(".", "A"), (" ", "A"), ("\n", "x"), ("I", "(A)")])
def test_hyperspy_quantities_its_title_cannot_tell_apart(tmp_path, quantity, units):
    """A quantity "." made a .hspy file HyperSpy cannot read (it names a group after the title);
    a blank quantity lost its units, and units in parentheses came back empty."""
    (back,) = ub.read(ub.write(dataset_named(["Y", "X", "V"], ["m", "m", "V"], quantity, units), tmp_path / "q.hspy"))
    assert (back.quantity, back.units) == (quantity, units)


@pytest.mark.parametrize(
    "names, units, quantity, quantity_units, refused",
    [
        (["Y", "X", "V"], ["", "", ""], "I", "A\nB", "control characters or line breaks"),
        (["Y", "X\x1b", "V"], ["", "", ""], "I", "A", "control characters or line breaks"),
        (["Y", "X", "V"], ["", "", ""], "I\u2028J", "A", "control characters or line breaks"),
        (["slow motor", "X", "V"], ["", "", ""], "I", "A", "cannot hold one"),
    ],
)
def test_spec_refuses_header_text_that_breaks_its_lines(tmp_path, names, units, quantity, quantity_units, refused):
    """A line break in the MCA units wrote a file read back with no data; a motor name with a space
    was split in the #S command and its scan read back with the wrong positions."""
    with pytest.raises(UnsupportedFeatureError, match=refused):
        ub.write(dataset_named(names, units, quantity, quantity_units), tmp_path / "bad.spec")
    assert not list(tmp_path.iterdir())
