"""pycroscopy's own files: a small band-excitation (BEPS) file as pycroscopy's translators lay it out,
written here with pyUSID (complex response, UDVS and bin tables, a compound noise floor as a
second Main dataset sharing the positions, region references), read, validated and converted."""

import h5py
import numpy as np
import pytest

import usidbridge as ub


@pytest.fixture
def beps_file(tmp_path, usid):
    """Positions X 3 × Y 2; spectroscopic Frequency 5 (fastest) × DC_Offset 4 × Field 2, complex64."""
    rng = np.random.default_rng(11)
    frequencies, offsets = np.linspace(300e3, 310e3, 5), np.array([-2.0, -1.0, 1.0, 2.0])
    path = tmp_path / "BEPS_small.h5"
    with h5py.File(path, "w") as file:
        file.attrs.update(data_type="BEPSData", translator="BEodfTranslator", VS_mode="DC modulation mode")
        channel = file.create_group("Measurement_000").create_group("Channel_000")
        channel.attrs.update(channel_type="BE")
        pos = [usid.Dimension("X", "m", np.arange(3) * 1e-7), usid.Dimension("Y", "m", np.arange(2) * 1e-7)]
        spec = [usid.Dimension("Frequency", "Hz", frequencies), usid.Dimension("DC_Offset", "V", offsets), usid.Dimension("Field", "", [0, 1])]
        response = (rng.normal(size=(6, 40)) + 1j * rng.normal(size=(6, 40))).astype(np.complex64)
        main = usid.hdf_utils.write_main_dataset(channel, response, "Raw_Data", "Piezoresponse", "V", pos, spec)
        udvs = np.column_stack([np.arange(8), np.tile(offsets, 2), np.repeat([0.0, 1.0], 4)])
        channel.create_dataset("UDVS", data=udvs).attrs["labels"] = np.array([b"step_num", b"dc_offset", b"in_field"])
        channel.create_dataset("Bin_Frequencies", data=frequencies)
        channel.create_dataset("Bin_Indices", data=np.arange(5, dtype=np.uint32))
        noise_type = np.dtype([("super_band", np.float32), ("inter_bin_band", np.float32), ("sub_band", np.float32)])
        noise = np.zeros((6, 8), noise_type)
        for field in noise_type.names:
            noise[field] = rng.random((6, 8))
        usid.hdf_utils.write_main_dataset(channel, noise, "Noise_Floor", "Noise", "V", None, [usid.Dimension("DC_Offset", "V", offsets), usid.Dimension("Field", "", [0, 1])],
                                          h5_pos_inds=main.h5_pos_inds, h5_pos_vals=main.h5_pos_vals, aux_spec_prefix="Noise_Spec_")
    return path, response, noise


def test_beps_reads_validates_and_converts(beps_file, tmp_path, usid):
    path, response, noise = beps_file
    report = ub.validate(path)
    assert report.ok and len(report.main_datasets) == 2, report.findings
    raw, floor = sorted(ub.read(path), key=lambda dataset: dataset.name != "Raw_Data")
    assert (raw.quantity, raw.units, raw.dtype) == ("Piezoresponse", "V", np.complex64)
    assert [dim.name for dim in raw.spec.dims] == ["Field", "DC_Offset", "Frequency"]  # slowest first
    assert np.array_equal(raw.data, response) and floor.dtype.names == ("super_band", "inter_bin_band", "sub_band")
    assert np.array_equal(floor.data, noise) and floor.pos.same_as(raw.pos)
    with h5py.File(path, "r") as file:
        theirs = usid.USIDataset(file["Measurement_000/Channel_000/Raw_Data"])
        reference, labels = np.asarray(theirs.get_n_dim_form()), list(theirs.n_dim_labels)
    ours = np.asarray(raw.to_ndarray())
    assert np.array_equal(np.transpose(ours, [[dim.name for dim in raw.dims].index(label) for label in labels]), reference)
    for suffix in (".h5", ".nxs", ".nc"):
        back = ub.read(ub.write([raw, floor], tmp_path / f"beps{suffix}"))
        assert len(back) == 2 and any(np.array_equal(dataset.data, response) for dataset in back)
    out = tmp_path / "beps.h5"
    with h5py.File(out, "r") as file:
        mains = usid.hdf_utils.get_all_main(file)
        assert len(mains) == 2 and all(usid.hdf_utils.check_if_main(main) for main in mains)
        assert file[mains[0].attrs["Position_Indices"]] == file[mains[1].attrs["Position_Indices"]]  # one scan: positions stored once
