"""h5USID: the real files, pyUSID and HyperSpy as peers, exact round trips, results groups, lazy reads."""

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

import usidbridge as ub
from usidbridge.converters import h5usid
from usidbridge.errors import ModelError, NotUSIDError, OutputExistsError, UnreadableFileError, WriteError

from conftest import FIXTURES, need
from strategies import datasets

MAIN = "/Measurement_000/Channel_000/Raw_Data"

EXPECTED = {
    "AFM_Force_Curve.h5": [("Deflection", "m", np.float32, [("X", "a. u.", 1)], [("Z", "m", 2045)])],
    "SingFreqPFM_0003.h5": [
        (quantity, "m", np.float32, [("Y", "m", 128), ("X", "m", 128)], [("arb", "a.u.", 1)])
        for quantity in ("HeightRetrace", "AmplitudeRetrace", "DeflectionRetrace", "PhaseRetrace")
    ],
    "simulated_STEM_Image.h5": [("Intensity", "a.u.", np.uint8, [("Y", "nm", 256), ("X", "nm", 256)], [("None", "a.u.", 1)])],
}


def describe(dims):
    return [(dim.name, dim.units, dim.size) for dim in dims]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_real_files_read_like_pyusid(shared_data, usid, name):
    path = shared_data / "usid" / name
    read = ub.read(path)
    assert [(d.quantity, d.units, d.dtype, describe(d.pos.dims), describe(d.spec.dims)) for d in read] == [
        (q, u, np.dtype(t), p, s) for q, u, t, p, s in EXPECTED[name]
    ]
    with h5py.File(path, "r") as file:
        for dataset in read:
            peer = usid.USIDataset(file[dataset.source.rpartition("::")[2]])
            peer_labels = list(peer.pos_dim_labels) + list(peer.spec_dim_labels)
            axes = [peer_labels.index(dim.name) for dim in dataset.dims]  # pyUSID keeps the file's column order
            assert np.array_equal(np.transpose(peer.get_n_dim_form(), axes), dataset.to_ndarray())
            for dim in dataset.dims:
                getter = peer.get_pos_values if dim.name in peer.pos_dim_labels else peer.get_spec_values
                assert np.allclose(getter(dim.name), dim.values)


def test_stem_image_equals_its_tiff(shared_data):
    tifffile = need("tifffile")
    image = ub.read(shared_data / "usid" / "simulated_STEM_Image.h5")[0].to_ndarray(squeeze=True)
    assert np.array_equal(image, tifffile.imread(shared_data / "usid" / "simulated_STEM_Image.tif"))


def test_lazy_read_leaves_data_in_the_file(shared_data):
    dataset = ub.read(shared_data / "usid" / "SingFreqPFM_0003.h5", lazy=True)[0]
    assert isinstance(dataset.data, ub.model.FileArray) and isinstance(dataset.data.array, h5py.Dataset) and dataset.is_lazy
    assert dataset.to_ndarray().shape == (128, 128, 1)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_written_files_pass_pyusid_and_hyperspy(shared_data, usid, tmp_path, name):
    source = ub.read(shared_data / "usid" / name, lazy=True)
    out = ub.write(source, tmp_path / name)
    assert ub.validate(out).ok and not ub.validate(out).warnings
    with h5py.File(out, "r") as file:
        mains = usid.hdf_utils.get_all_main(file)
        assert len(mains) == len(source)
        for peer, dataset in zip(mains, source):
            assert usid.hdf_utils.check_if_main(peer)
            assert peer.pos_dim_labels == list(dataset.pos.labels)
            assert peer.spec_dim_labels == list(dataset.spec.labels)
            assert peer.data_descriptor == f"{dataset.quantity} ({dataset.units})"
            assert np.array_equal(peer.get_n_dim_form(), dataset.to_ndarray())
    hs = need("hyperspy.api")
    signals = hs.load(out, file_format="USID")
    signals = signals if isinstance(signals, list) else [signals]
    assert len(signals) == len(source)
    assert np.array_equal(np.asarray(signals[0].data).squeeze(), np.asarray(source[0].to_ndarray(squeeze=True)))
    units = {axis.name: axis.units for axis in signals[0].axes_manager._axes}
    for dim in source[0].dims:
        if dim.size > 1:
            assert units[dim.name] == dim.units


def test_channels_with_the_same_positions_share_ancillaries(shared_data, tmp_path):
    out = ub.write(ub.read(shared_data / "usid" / "SingFreqPFM_0003.h5"), tmp_path / "pfm.h5")
    with h5py.File(out, "r") as file:
        measurement = file["Measurement_000"]
        assert {"Position_Indices", "Position_Values", "Spectroscopic_Indices", "Spectroscopic_Values"} <= set(measurement)
        targets = {file[measurement[f"Channel_{n:03d}/Raw_Data"].attrs["Position_Indices"]].name for n in range(4)}
        assert targets == {"/Measurement_000/Position_Indices"}


PYUSID_CASES = {
    "1 dim": ((7,), 1),
    "2 dims": ((3, 5), 2),
    "3 dims": ((2, 3, 4), 2),
    "4 dims": ((2, 2, 3, 4), 2),
}


def pyusid_file(usid, path, shape, n_pos, dtype=np.float32, spec_values=None):
    rng = np.random.default_rng(1)
    if np.dtype(dtype).fields:
        data = np.zeros(shape, dtype=dtype)
        for field in data.dtype.names:
            data[field] = rng.normal(size=shape)
    elif np.dtype(dtype).kind == "c":
        data = (rng.normal(size=shape) + 1j * rng.normal(size=shape)).astype(dtype)
    else:
        data = rng.normal(size=shape).astype(dtype)
    names = ["Row", "Col", "Bias", "Cycle"]
    pos_dims = [usid.Dimension(names[i], "um", np.linspace(0, 1, size)) for i, size in enumerate(shape[:n_pos])]
    spec_dims = [usid.Dimension(names[2 + i], "V", np.arange(size) * 0.1) for i, size in enumerate(shape[n_pos:])]
    if spec_values is not None:
        spec_dims = [usid.Dimension("Freq", "Hz", spec_values)]
    if not spec_dims:
        spec_dims = [usid.Dimension("arb", "a.u.", 1)]
    n_positions = int(np.prod(shape[:n_pos]))
    with h5py.File(path, "w") as file:
        group = file.create_group("Measurement_000/Channel_000")
        usid.hdf_utils.write_main_dataset(
            group, data.reshape(n_positions, -1), "Raw_Data", "Signal", "pA", pos_dims, spec_dims, slow_to_fast=True
        )
    return data


@pytest.mark.parametrize("case", sorted(PYUSID_CASES))
def test_files_written_by_pyusid_read_back_equal(usid, tmp_path, case):
    shape, n_pos = PYUSID_CASES[case]
    data = pyusid_file(usid, tmp_path / "peer.h5", shape, n_pos)
    (dataset,) = ub.read(tmp_path / "peer.h5")
    assert np.array_equal(dataset.to_ndarray().reshape(shape), data)
    assert dataset.quantity == "Signal" and dataset.units == "pA"
    assert [dim.name for dim in dataset.pos.dims] == ["Row", "Col"][:n_pos]
    assert [dim.name for dim in dataset.spec.dims] == (["Bias", "Cycle"][: len(shape) - n_pos] or ["arb"])


@pytest.mark.parametrize(
    "dtype, spec_values",
    [
        (np.dtype([("amp", np.float32), ("phase", np.float32)]), None),
        (np.complex64, None),
        (np.float64, [1.0, 2.0, 4.0, 8.0, 16.0]),
    ],
    ids=["compound", "complex", "non-uniform"],
)
def test_pyusid_compound_complex_and_non_uniform(usid, tmp_path, dtype, spec_values):
    shape = (3, 4, 5)
    data = pyusid_file(usid, tmp_path / "peer.h5", shape, 2, dtype=dtype, spec_values=spec_values)
    (dataset,) = ub.read(tmp_path / "peer.h5")
    assert dataset.dtype == np.dtype(dtype)
    assert np.array_equal(dataset.to_ndarray(), data)
    if spec_values:
        assert dataset.spec.dims[0].values.tolist() == spec_values and not dataset.spec.dims[0].is_uniform


def assert_same(left, right):
    assert left.name == right.name and left.quantity == right.quantity and left.units == right.units
    assert left.dtype == right.dtype
    left_data, right_data = np.asarray(left.data), np.asarray(right.data)
    assert left_data.shape == right_data.shape and left_data.tobytes() == right_data.tobytes()  # bitwise, NaN included
    for side in ("pos", "spec"):
        assert getattr(left, side).same_as(getattr(right, side)), side
    assert {k: v for k, v in right.metadata.items() if k != "h5usid"} == left.metadata


@given(dataset=datasets())
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_round_trip_is_exact(tmp_path, dataset):
    first = ub.write(dataset, tmp_path / "first.h5", overwrite=True)
    (read,) = ub.read(first)
    assert_same(dataset, read)
    second = ub.write(read, tmp_path / "second.h5", overwrite=True)
    assert ub.validate(second).ok
    with h5py.File(first, "r") as a, h5py.File(second, "r") as b:
        for path in (MAIN, "/Measurement_000/Channel_000", "/Measurement_000", "/"):
            plain_a = {k: v for k, v in a[path].attrs.items() if not isinstance(v, h5py.Reference)}
            plain_b = {k: v for k, v in b[path].attrs.items() if not isinstance(v, h5py.Reference)}
            assert plain_a.keys() == plain_b.keys()
            for key in plain_a:
                assert np.array_equal(plain_a[key], plain_b[key]), key


def test_real_file_round_trip_keeps_every_attribute(shared_data, tmp_path):
    source = shared_data / "usid" / "SingFreqPFM_0003.h5"
    out = ub.write(ub.read(source), tmp_path / "copy.h5")
    with h5py.File(source, "r") as a, h5py.File(out, "r") as b:
        for path in (MAIN, "/Measurement_000/Channel_000", "/Measurement_000", "/"):
            for key, value in a[path].attrs.items():
                if not isinstance(value, h5py.Reference):
                    assert np.array_equal(b[path].attrs[key], value), (path, key)


def test_values_are_float32_only_when_lossless(tmp_path):
    exact = ub.Dimension("X", "m", [0.5, 1.5, 2.5])
    lossy = ub.Dimension("t", "s", [1.7e9, 1.7e9 + 1, 1.7e9 + 2])
    dataset = ub.Dataset.from_ndarray(np.zeros((3, 3)), [exact], [lossy])
    out = ub.write(dataset, tmp_path / "v.h5")
    with h5py.File(out, "r") as file:
        channel = file["Measurement_000/Channel_000"]
        assert channel["Position_Values"].dtype == np.float32
        assert channel["Spectroscopic_Values"].dtype == np.float64
    assert ub.read(out)[0].spec.dims[0].values.tolist() == lossy.values.tolist()


@pytest.mark.parametrize("block_rows", [3, 7, 2**20])
def test_ancillary_tables_written_by_blocks_equal_the_whole_tables(tmp_path, monkeypatch, block_rows):
    """Tables longer than a block are written a block of rows at a time; shorter ones in one call."""
    monkeypatch.setattr(h5usid, "ANCILLARY_BLOCK_ROWS", block_rows)
    pos = [ub.Dimension("Y", "m", [0.5, 1.5, 2.5, 3.5]), ub.Dimension("X", "m", 5)]
    spec = [ub.Dimension("t", "s", [1.7e9, 1.7e9 + 1, 1.7e9 + 2]), ub.Dimension("V", "V", 4)]
    dataset = ub.Dataset.from_ndarray(np.zeros((4, 5, 3, 4)), pos, spec)
    out = ub.write(dataset, tmp_path / "tables.h5")
    with h5py.File(out, "r") as file:
        channel = file["Measurement_000/Channel_000"]
        assert np.array_equal(channel["Position_Indices"][()], dataset.pos.indices) and channel["Position_Values"].dtype == np.float32
        assert np.array_equal(channel["Spectroscopic_Indices"][()], dataset.spec.indices.T) and channel["Spectroscopic_Values"].dtype == np.float64
        assert np.array_equal(channel["Spectroscopic_Values"][()], dataset.spec.values.T)
    back = ub.read(out)[0]
    assert back.pos.same_as(dataset.pos) and back.spec.same_as(dataset.spec)


@pytest.mark.parametrize("compression", ["gzip", "lzf", "none"])
def test_compression_and_whole_position_chunks(tmp_path, compression):
    dataset = ub.Dataset.from_ndarray(np.arange(200 * 50, dtype=np.float64).reshape(20, 10, 50), [ub.Dimension("Y", "m", 20), ub.Dimension("X", "m", 10)], [ub.Dimension("V", "V", 50)])
    out = ub.write(dataset, tmp_path / "c.h5", compression=compression)
    with h5py.File(out, "r") as file:
        main = file[MAIN]
        assert main.compression == (None if compression == "none" else compression)
        assert main.chunks is None if compression == "none" else main.chunks[1] == 50  # contiguous, or chunks of whole spectra
    assert ub.validate(out).rule_ids() == set()
    assert np.array_equal(ub.read(out)[0].data, dataset.data)


def test_results_group_with_source_reference(tmp_path, usid):
    raw = ub.Dataset.from_ndarray(np.random.default_rng(0).normal(size=(4, 5, 6)), [ub.Dimension("Y", "m", 4), ub.Dimension("X", "m", 5)], [ub.Dimension("V", "V", 6)], quantity="Current", units="A")
    path = ub.write(raw, tmp_path / "raw.h5")
    mean = ub.Dataset.from_ndarray(raw.to_ndarray().mean(axis=2), raw.pos.dims, name="Mean", quantity="Mean current", units="A")
    group = h5usid.add_results(path, MAIN, "Average", [mean], parameters={"axis": "V"})
    assert group == "/Measurement_000/Channel_000/Raw_Data-Average_000"
    report = ub.validate(path)
    assert report.ok and not report.warnings and len(report.main_datasets) == 2
    with h5py.File(path, "r") as file:
        results = file[group]
        assert file[results.attrs["source_000"]].name == MAIN
        assert results.attrs["tool"] == "Average" and results.attrs["num_sources"] == 1 and results.attrs["axis"] == "V"
        assert file[results["Mean"].attrs["Position_Indices"]].name == "/Measurement_000/Channel_000/Position_Indices"
        assert usid.hdf_utils.check_if_main(results["Mean"])
    assert h5usid.add_results(path, MAIN, "Average", [mean]).endswith("_001")


def test_failed_write_leaves_nothing(tmp_path, monkeypatch):
    dataset = ub.Dataset.from_ndarray(np.zeros((3, 4)), [ub.Dimension("X", "m", 3)], [ub.Dimension("V", "V", 4)])

    def broken(*_args, **_kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(h5usid, "copy_rows", broken)
    with pytest.raises(WriteError, match="out.h5: cannot write the file: disk full"):
        ub.write(dataset, tmp_path / "out.h5")
    assert list(tmp_path.iterdir()) == []


def test_existing_output_is_not_overwritten_by_default(tmp_path):
    target = tmp_path / "keep.h5"
    target.write_bytes(b"precious")
    dataset = ub.Dataset.from_ndarray(np.zeros(3), [ub.Dimension("X", "m", 3)])
    with pytest.raises(OutputExistsError):
        ub.write(dataset, target)
    assert target.read_bytes() == b"precious"


def test_not_usid_and_garbage_inputs(shared_data, tmp_path):
    with pytest.raises(NotUSIDError, match="no usable USID Main dataset"):
        ub.read(shared_data / "nexus" / "simple_signal.nxs", format="h5usid")
    garbage = tmp_path / "garbage.h5"
    garbage.write_bytes(b"\x00\x01garbage" * 100)
    with pytest.raises(UnreadableFileError):
        ub.read(garbage, format="h5usid")


def test_inputs_are_not_changed(shared_data, tmp_path):
    source = shared_data / "usid" / "AFM_Force_Curve.h5"
    before = source.read_bytes()
    ub.convert(source, tmp_path / "out.h5")
    assert source.read_bytes() == before


AWKWARD_METADATA = {
    "note": "a\x00b",
    "surrogate": "x\ud800y",
    "raw": b"\x00\xffbytes",
    "mixed": [1, "two", None, [3.5, {"four": b"4"}]],
    "empty": None,
    "huge": 2**70,
    "looks_encoded": "usidbridge-json:[1]",
    "section/with/slashes": {"inner": [None, 1]},
    "nested": {"deep": {"list of dicts": [{"a": 1}, {"b": [True, 2.5]}]}},
}


def test_metadata_hdf5_cannot_hold_is_encoded_and_read_back(tmp_path):
    dataset = ub.Dataset.from_ndarray(np.zeros(2), [ub.Dimension("X", "m", 2)], metadata=AWKWARD_METADATA)
    (back,) = ub.read(ub.write(dataset, tmp_path / "awkward.h5"))
    del back.metadata["h5usid"]
    assert back.metadata == AWKWARD_METADATA
    assert ub.validate(tmp_path / "awkward.h5").ok


@pytest.mark.parametrize("dtype", ["<f4", ">f8", "<c8", ">u2"])
def test_large_data_read_in_parallel_parts_equals_what_pyusid_reads(tmp_path, usid, dtype):
    """Main datasets of 1 MiB and more are read straight from the file, eagerly in another thread
    while the metadata is parsed (`lazy.BackgroundRead`), lazily in one part per core from 16 MiB
    (`lazy.read_in_parts`): the same array, in the file's byte order, as h5py and pyUSID read."""
    shape = (64, 64, 2048 if np.dtype(dtype).itemsize < 8 else 1024)
    array = (np.arange(np.prod(shape)) % 65521).astype(dtype).reshape(shape)
    dims = [ub.Dimension("Y", "m", shape[0]), ub.Dimension("X", "m", shape[1])], [ub.Dimension("Bias", "V", shape[2])]
    dataset = ub.Dataset.from_ndarray(array, *dims, quantity="Current", units="A")
    path = ub.write([dataset, ub.Dataset.from_ndarray(array[..., :3].copy(), dims[0], [ub.Dimension("F", "Hz", 3)], name="Small")], tmp_path / "big.h5")
    with h5py.File(path, "r") as file:
        main = file[MAIN]
        assert main.chunks is None and main.dtype == np.dtype(dtype) and np.array_equal(main[()], array.reshape(-1, shape[2]))
        peer = usid.USIDataset(main)
        assert usid.hdf_utils.check_if_main(main) and np.array_equal(peer.get_n_dim_form(), array)
    back, lazy = ub.read(path), ub.read(path, lazy=True)
    assert np.array_equal(back[0].to_ndarray(), array) and np.array_equal(back[1].to_ndarray(), array[..., :3])
    assert np.array_equal(lazy[0].to_ndarray(), array)


@pytest.mark.parametrize(
    "text",
    ["", "µm", "日本", "x" * 100_000, "a\x00b", "\udcff", np.array([b"X", b"Y"]), np.array([1.5, 2.0]), np.array(3, np.uint8), np.array([True]), np.array([1 + 2j]), np.array([b"a\xff"])],
)
def test_attributes_are_stored_as_h5py_stores_them(tmp_path, text):
    """`attributes.write_attr` is `attrs[name] = value` done faster: same type, same value, same refusals."""
    from usidbridge.attributes import write_attr

    with h5py.File(tmp_path / "attrs.h5", "w") as file:
        outcomes = []
        for way, group in (("h5py", file.create_group("h5py")), ("ours", file.create_group("ours"))):
            try:
                group.attrs["old"] = 1.0
                if way == "h5py":
                    group.attrs["q"], group.attrs["old"] = text, text
                else:
                    write_attr(group, "q", text)
                    write_attr(group, "old", text)  # replaces an attribute of another type
            except (ValueError, UnicodeError) as error:
                outcomes.append((type(error), "q" in group.attrs))
                continue
            stored = group.attrs.get_id("q").get_type()
            text_type = stored.get_class() == h5py.h5t.STRING
            outcomes.append((np.asarray(group.attrs["q"]).tolist(), np.asarray(group.attrs["old"]).tolist(), stored.get_class(), stored.get_size(), text_type and stored.is_variable_str(), text_type and stored.get_cset(), group.attrs.get_id("q").shape))
        assert outcomes[0] == outcomes[1]


@pytest.mark.parametrize("name", ["Metadata", "Position_Indices", "Spectroscopic_Values", "Position_Values_Mean", "a/b", ".", "", "Channel_000"])
def test_names_that_collide_with_usid_own_are_kept_apart(tmp_path, usid, name):
    """A Main dataset named like what USID writes beside it (Metadata, the ancillary tables), or that
    cannot name an HDF5 object, is stored under a name kept apart and read back with its own."""
    dataset = ub.Dataset.from_ndarray(np.arange(12.0).reshape(3, 4), [ub.Dimension("X", "m", 3)], [ub.Dimension("E", "eV", 4)], quantity="I", units="A", name=name, metadata={"note": "kept"})
    path = ub.write(dataset, tmp_path / "named.h5")
    assert ub.validate(path).ok
    (back,) = ub.read(path)
    assert back.name == name and back.metadata["note"] == "kept" and "usidbridge_name" not in back.metadata["h5usid"]["main"]
    mean = ub.Dataset.from_ndarray(back.to_ndarray().mean(axis=1), back.pos.dims, name=name, quantity="Mean", units="A")
    other = ub.Dataset.from_ndarray(back.to_ndarray()[:, :2], back.pos.dims, [ub.Dimension("E", "eV", 2)], name=name, quantity="Part", units="A")
    h5usid.add_results(path, back.source.split("::")[1], "Fit", [mean, other])
    with h5py.File(path, "r") as file:
        assert len(usid.hdf_utils.get_all_main(file)) == 3
    assert ub.validate(path).ok and sorted(dataset.name for dataset in ub.read(path)) == [name] * 3


@pytest.mark.parametrize("compression", ["gzip", "lzf"])
def test_compression_shrinks_an_images_position_tables(tmp_path, usid, compression):
    """An image's Position tables hold 16 bytes per pixel; compressed, they take 1-2 % of that, and
    pyUSID reads them back as they were (issue 21)."""
    image = ub.Dataset.from_ndarray(np.zeros((256, 512), np.uint16), [ub.Dimension.uniform("Y", "m", 256, scale=1e-9), ub.Dimension.uniform("X", "m", 512, scale=1e-9)], quantity="Height", units="m")
    plain, packed = ub.write(image, tmp_path / "plain.h5"), ub.write(image, tmp_path / "packed.h5", compression=compression)
    with h5py.File(plain, "r") as loose, h5py.File(packed, "r") as tight:
        for name in ("Position_Indices", "Position_Values"):
            table = tight[f"/Measurement_000/Channel_000/{name}"]
            assert table.compression == compression and table.id.get_storage_size() < 0.03 * loose[f"/Measurement_000/Channel_000/{name}"].id.get_storage_size()
            assert np.array_equal(table[()], loose[f"/Measurement_000/Channel_000/{name}"][()])
        main = usid.USIDataset(tight["/Measurement_000/Channel_000/Raw_Data"])
        assert main.get_n_dim_form().shape == (256, 512, 1)
    assert ub.validate(packed).ok


def test_save_a_fit_beside_the_measurement_it_was_read_from(tmp_path, usid):
    """How do I save my fit? add_results takes the Dataset read from the file: the results group
    links the measurement's positions and writes its own spectroscopic dims; pyUSID finds the
    group, its source and its Main datasets (issue 23)."""
    path = ub.write(ub.read(FIXTURES / "pyusid_iv_map.h5"), tmp_path / "iv.h5")
    (raw,) = ub.read(path)
    curves = raw.to_ndarray()
    slope, offset = np.polyfit(raw.dim("Bias").values, curves.reshape(-1, curves.shape[-1]).T, 1)
    fit = ub.Dataset.from_ndarray(np.stack([slope, offset], axis=1).reshape(*raw.pos.shape, 2), raw.pos.dims, [ub.Dimension("Coefficient", "", [1.0, 0.0])], name="Fit", quantity="Linear fit", units="A/V")
    group = h5usid.add_results(path, raw, "Linear_Fit", fit, parameters={"degree": 1})
    assert group.endswith("Raw_Data-Linear_Fit_000")
    report = ub.validate(path)
    assert report.ok and len(report.main_datasets) == 2
    with h5py.File(path, "r") as file:
        source = file[ub.api.internal_path(raw)]
        (found,) = usid.hdf_utils.find_results_groups(source, "Linear_Fit")
        assert found.name == group and usid.hdf_utils.check_for_old(source, "Linear_Fit", new_parms={"degree": 1}) == [found]
        main = found["Fit"]
        assert usid.hdf_utils.check_if_main(main) and file[main.attrs["Position_Indices"]].name == file[source.attrs["Position_Indices"]].name  # the measurement's positions, linked
        assert usid.USIDataset(main).spec_dim_labels == ["Coefficient"]
    back = [dataset for dataset in ub.read(path) if dataset.name == "Fit"][0]
    assert np.allclose(back.to_ndarray()[..., 0], slope.reshape(raw.pos.shape))
    with pytest.raises(ModelError, match="was read from"):
        h5usid.add_results(tmp_path / "other.h5", raw, "Linear_Fit", fit)
    (lazy,) = ub.read(path, dataset=ub.api.internal_path(raw), lazy=True)
    with pytest.raises(WriteError, match="lazy=False"):  # HDF5 will not write a file this process reads
        h5usid.add_results(path, lazy, "Linear_Fit", fit)


def test_a_read_opens_the_file_once_and_leaves_open_only_what_lazy_data_needs(tmp_path, monkeypatch):
    """The file that format detection opens is the one the reader reads (`hdf.sniffing`): one open
    per read. An eager read leaves nothing open; a lazy one keeps the file for its data, until freed."""
    import gc

    from usidbridge import hdf

    array = np.arange(4 * 5 * 300, dtype=np.float32).reshape(4, 5, 300)
    path = ub.write(ub.Dataset.from_ndarray(array, [ub.Dimension("Y", "m", 4), ub.Dimension("X", "m", 5)], [ub.Dimension("V", "V", 300)]), tmp_path / "map.h5")
    opened = []

    class CountedFile(h5py.File):
        def __init__(self, name, *args, **kwargs):
            opened.append(str(name))
            super().__init__(name, *args, **kwargs)

    def still_open(kinds=h5py.h5f.OBJ_FILE | h5py.h5f.OBJ_GROUP | h5py.h5f.OBJ_DATASET | h5py.h5f.OBJ_ATTR):
        return h5py.h5f.get_obj_count(types=kinds)

    monkeypatch.setattr(hdf.h5py, "File", CountedFile)
    (eager,) = ub.read(path, isolate=False)
    assert opened == [str(path)] and still_open() == 0 and np.array_equal(eager.to_ndarray(), array)
    (lazy,) = ub.read(path, lazy=True, isolate=False)
    assert len(opened) == 2 and still_open(h5py.h5f.OBJ_DATASET) == 1
    assert np.array_equal(lazy.to_ndarray(), array)
    del lazy
    gc.collect()
    assert still_open() == 0


@pytest.mark.parametrize("lazy", [False, True])
def test_a_main_dataset_without_a_dataspace_is_a_clean_error(tmp_path, lazy):
    """A Main dataset replaced by one with a null dataspace (h5py.Empty), its attributes kept: one
    error naming the file, not a TypeError from the sizes of nothing."""
    dataset = ub.Dataset.from_ndarray(np.arange(32.0).reshape(2, 2, 8), [ub.Dimension("Y", "m", 2), ub.Dimension("X", "m", 2)], [ub.Dimension("E", "eV", 8)])
    path = ub.write(dataset, tmp_path / "empty.h5")
    with h5py.File(path, "r+") as file:
        attributes = dict(file[MAIN].attrs)
        del file[MAIN]
        empty = file.create_dataset(MAIN, data=h5py.Empty("f"))
        for key, value in attributes.items():
            empty.attrs[key] = value
    with pytest.raises(NotUSIDError, match="empty.h5: no usable USID Main dataset .*Raw_Data: a Main dataset is 2-D .* shape is None"):
        ub.read(path, lazy=lazy)
