"""Working with a Dataset by dim name, as pyUSID's USIDataset does: isel against USIDataset.slice
on real h5USID files, sel by value and by nearest value, lazy stays lazy, non-grid positions."""

import itertools

import h5py
import numpy as np
import pytest

import usidbridge as ub
from usidbridge.errors import ModelError

from conftest import FIXTURES

H5USID_FILES = ["usid/SingFreqPFM_0003.h5", "usid/AFM_Force_Curve.h5", "usid/simulated_STEM_Image.h5"]


def selections(dims):
    """An index, a slice and a list for each dim, and one of each pair of dims."""
    single = []
    for dim in dims:
        single += [{dim.name: dim.size // 2}, {dim.name: slice(0, max(1, dim.size // 3))}, {dim.name: [0, dim.size - 1]}]
    pairs = [{first.name: first.size - 1, second.name: slice(second.size // 2, None)} for first, second in itertools.combinations(dims, 2)]
    return single + pairs


@pytest.mark.parametrize("name", H5USID_FILES + ["fixtures/pyusid_iv_map.h5"])
def test_isel_is_pyusids_slice(shared_data, usid, name):
    path = FIXTURES / "pyusid_iv_map.h5" if name.startswith("fixtures") else shared_data / name
    with h5py.File(path, "r") as file:
        for main in usid.hdf_utils.get_all_main(file):
            theirs = usid.USIDataset(main)
            (ours,) = [dataset for dataset in ub.read(path) if dataset.source.endswith(main.name)]
            for selection in selections([dim for dim in ours.dims if dim.name in theirs.n_dim_labels]):
                expected, ok = theirs.slice(slice_dict=selection)
                assert ok
                picked = ours.isel(**selection)
                theirs_order = [name for name in theirs.n_dim_labels if not isinstance(selection.get(name), int)]  # pyUSID drops the dims an integer picks
                names = [dim.name for dim in picked.dims]
                mine = picked.to_ndarray().squeeze(axis=tuple(axis for axis, name in enumerate(names) if name not in theirs_order))
                names = [name for name in names if name in theirs_order]
                assert np.array_equal(mine.transpose([names.index(name) for name in theirs_order]), expected), selection  # in pyUSID's axis order (older files: X before Y)
                assert (picked.quantity, picked.units, picked.metadata) == (ours.quantity, ours.units, ours.metadata)
                for dim_name, index in selection.items():
                    if not isinstance(index, int):
                        assert np.array_equal(picked.dim(dim_name).values, ours.dim(dim_name).values[index])


def test_sel_by_value_nearest_and_range():
    (iv,) = ub.read(FIXTURES / "pyusid_iv_map.h5")
    bias = iv.dim("Bias")
    assert bias.units == "V" and bias.size == 16
    at = iv.sel(Bias=bias.values[5])
    assert at.dim("Bias").values.tolist() == [bias.values[5]] and at.pos.shape == iv.pos.shape  # the chosen value stays, as xarray keeps a scalar coordinate
    assert np.array_equal(at.to_ndarray(squeeze=True), iv.to_ndarray()[:, :, 5])
    assert np.array_equal(iv.sel(method="nearest", Bias=bias.values[5] + 1e-3).to_ndarray(), at.to_ndarray())
    with pytest.raises(ModelError, match="method='nearest'"):
        iv.sel(Bias=bias.values[5] + 1e-3)
    window = iv.sel(Bias=slice(bias.values[2], bias.values[6]))
    assert window.dim("Bias").values.tolist() == bias.values[2:7].tolist()
    x = iv.dim("X").values
    corner = iv.sel(X=slice(x[0], x[2]), Bias=bias.values[0])
    assert corner.nd_shape == (iv.pos.shape[0], 3, 1)
    with pytest.raises(ModelError, match="no dim"):
        iv.sel(Voltage=1.0)
    with pytest.raises(ModelError, match="outside"):
        iv.isel(X=99)


def test_lazy_stays_lazy_and_reads_only_the_selection(tmp_path):
    (iv,) = ub.read(FIXTURES / "pyusid_iv_map.h5")
    (lazy,) = ub.read(FIXTURES / "pyusid_iv_map.h5", lazy=True)
    picked = lazy.isel(Y=slice(1, 3), Bias=[0, 4, 8])
    assert picked.is_lazy
    assert np.array_equal(np.asarray(picked.to_ndarray()), iv.to_ndarray()[1:3, :, [0, 4, 8]])
    out = ub.write(picked, tmp_path / "picked.h5")
    assert ub.validate(out).ok and ub.read(out)[0].nd_shape == (2, iv.pos.shape[1], 3)


def test_non_grid_positions_select_by_row_and_spectroscopic_dim():
    indices = np.array([[0, 0], [1, 0], [0, 1], [2, 2]], np.uint32)
    pos = ub.Ancillary.from_table(["x", "y"], ["m", "m"], indices, indices * 1e-6)
    spec = ub.Ancillary([ub.Dimension("Bias", "V", [-1.0, 0.0, 1.0])])
    sparse = ub.Dataset(np.arange(12.0).reshape(4, 3), pos, spec, quantity="Current", units="A")
    assert not sparse.pos.is_grid and sparse.dim("x").values.tolist() == [0.0, 1e-6, 0.0, 2e-6]
    picked = sparse.isel(position=[1, 3], Bias=slice(1, None))
    assert np.array_equal(picked.data, [[4.0, 5.0], [10.0, 11.0]])
    assert picked.pos.values.tolist() == [[1e-6, 0.0], [2e-6, 2e-6]] and picked.dim("Bias").values.tolist() == [0.0, 1.0]
    assert sparse.sel(Bias=0.0).data[:, 0].tolist() == [1.0, 4.0, 7.0, 10.0]
    with pytest.raises(ModelError, match="position"):
        sparse.isel(x=1)
