"""Every rule of the catalog: a file that breaks exactly that rule, and pyUSID's verdict beside ours."""

import json

import h5py
import numpy as np
import pytest

from usidbridge import rules, validate
from usidbridge.errors import UnreadableFileError

from usid_files import compliant_file

MAIN = "Measurement_000/Channel_000/Raw_Data"
CHANNEL = "Measurement_000/Channel_000"


def replace_dataset(file, name, data, keep_attrs=True):
    """Swap a dataset for a new one with other data, keeping its attributes and the references to it."""
    old = file[name]
    attrs = dict(old.attrs) if keep_attrs else {}
    del file[name]
    new = file.create_dataset(name, data=data)
    new.attrs.update(attrs)
    for main_name in [MAIN]:
        main = file[main_name] if main_name in file else None
        if main is not None:
            for key in rules.ANCILLARY_NAMES:
                if f"{CHANNEL}/{key}" == name:
                    main.attrs[key] = new.ref
    return new


def break_m01(file):
    main = file[MAIN]
    attrs = dict(main.attrs)
    del file[MAIN]
    new = file.create_dataset(MAIN, data=np.zeros((6, 4, 1), np.float32))
    new.attrs.update(attrs)


def break_m04(file):
    file[MAIN].attrs["Position_Values"] = f"/{CHANNEL}/Position_Values"


def break_m05(file):
    ghost = file.create_dataset("ghost", data=[1])
    file[MAIN].attrs["Spectroscopic_Values"] = ghost.ref
    del file["ghost"]


def break_a01(file):
    replace_dataset(file, f"{CHANNEL}/Position_Values", np.zeros((5, 2), np.float32))


def break_a02(file):
    replace_dataset(file, f"{CHANNEL}/Spectroscopic_Indices", np.arange(3, dtype=np.uint32)[None, :])
    replace_dataset(file, f"{CHANNEL}/Spectroscopic_Values", np.arange(3, dtype=np.float32)[None, :])


def break_a03_float(file):
    table = file[f"{CHANNEL}/Position_Indices"][()]
    replace_dataset(file, f"{CHANNEL}/Position_Indices", table.astype(np.float64))


def break_a03_signed(file):
    table = file[f"{CHANNEL}/Position_Indices"][()]
    replace_dataset(file, f"{CHANNEL}/Position_Indices", table.astype(np.int32))


def break_a04(file):
    table = file[f"{CHANNEL}/Spectroscopic_Values"][()]
    replace_dataset(file, f"{CHANNEL}/Spectroscopic_Values", table.astype(np.complex64))


def break_a05(file):
    file[f"{CHANNEL}/Position_Values"].attrs["units"] = np.array([b"nm", b"um"])


def break_a06(file):
    for name in ("Position_Indices", "Position_Values"):
        file[f"{CHANNEL}/{name}"].attrs["labels"] = np.array([b"X", b"X"])


def break_a07(file):
    table = file[f"{CHANNEL}/Spectroscopic_Indices"][()]
    table[0, 3] = 4
    replace_dataset(file, f"{CHANNEL}/Spectroscopic_Indices", table)


def break_a08(file):
    # sparse sampling: the same 6 positions, visited as a path rather than a raster
    order = [0, 4, 2, 3, 1, 5]
    for name in ("Position_Indices", "Position_Values"):
        replace_dataset(file, f"{CHANNEL}/{name}", file[f"{CHANNEL}/{name}"][()][order])


def break_a09(file):
    table = file[f"{CHANNEL}/Position_Values"][()]
    table[4, 1] = 7.0
    replace_dataset(file, f"{CHANNEL}/Position_Values", table)


def break_b01(file):
    for obj in (file[MAIN], file[CHANNEL]):
        for key in ("timestamp", "machine_id", "platform", "pyUSID_version"):
            del obj.attrs[key]


def break_g01(file):
    file.move(CHANNEL, "Measurement_000/Results")


def break_c01(file):
    main = file[MAIN]
    attrs, data = dict(main.attrs), main[()]
    del file[MAIN]
    new = file.create_dataset(MAIN, data=data, chunks=(6, 2))
    new.attrs.update(attrs)


def break_f01(file):
    for key in rules.ANCILLARY_NAMES:
        del file[MAIN].attrs[key]


BREAKS = {
    "M01": break_m01,
    "M02": lambda file: file[MAIN].attrs.__setitem__("quantity", ""),
    "M03": lambda file: file[MAIN].attrs.__setitem__("units", 3),
    "M04": break_m04,
    "M05": break_m05,
    "M06": lambda file: replace_dataset(file, MAIN, np.array([[b"a"] * 4] * 6)),
    "A01": break_a01,
    "A02": break_a02,
    "A03": break_a03_float,
    "A04": break_a04,
    "A05": break_a05,
    "A06": break_a06,
    "A07": break_a07,
    "A08": break_a08,
    "A09": break_a09,
    "B01": break_b01,
    "G01": break_g01,
    "C01": break_c01,
    "F01": break_f01,
}

# Deliberate differences from pyUSID's check_if_main (docs/rules.md): pyUSID checks shapes and
# attribute presence only; it accepts what these rules reject, or crashes on it.
PYUSID_DIFFERS = {
    "M02": True,  # pyUSID accepts an empty quantity
    "M04": True,  # pyUSID follows a path string as if it were a reference
    "M06": True,  # pyUSID does not check the dtype
    "A03": True,  # pyUSID accepts float indices
    "A04": True,  # pyUSID accepts complex values
    "A06": True,  # pyUSID accepts repeated labels
    "A07": True,  # pyUSID does not read the indices
    "A09": True,  # pyUSID does not read the values
}


def broken_file(tmp_path, rule):
    path = compliant_file(tmp_path / f"{rule}.h5")
    with h5py.File(path, "r+") as file:
        BREAKS[rule](file)
    return path


def pyusid_verdict(usid, path):
    with h5py.File(path, "r") as file:
        candidates = rules.main_candidates(file)
        if not candidates:
            return False
        try:
            return all(usid.hdf_utils.check_if_main(candidate) for candidate in candidates)
        except Exception as error:  # pyUSID raises instead of answering for some broken files
            return f"raises {type(error).__name__}"


def test_catalog_has_every_rule_of_the_design():
    design = "M01 M02 M03 M04 M05 M06 A01 A02 A03 A04 A05 A06 A07 A08 A09 B01 G01 C01".split()
    assert set(design) <= set(rules.RULES)
    assert set(BREAKS) == set(rules.RULES) - {"F02"}


def test_compliant_file_has_no_findings(tmp_path, usid):
    path = compliant_file(tmp_path / "ok.h5")
    report = validate(path)
    assert report.ok and report.findings == [] and report.main_datasets == [f"/{MAIN}"]
    assert pyusid_verdict(usid, path) is True


@pytest.mark.parametrize("rule", sorted(BREAKS))
def test_each_rule_is_reported_exactly(tmp_path, rule, usid):
    path = broken_file(tmp_path, rule)
    report = validate(path)
    assert report.rule_ids() == {rule}, report.to_text()
    severity = rules.RULES[rule].severity
    assert report.ok == (severity in ("warning", "info"))
    theirs = pyusid_verdict(usid, path)
    if rule in PYUSID_DIFFERS:
        assert theirs != report.ok, f"pyUSID now agrees on {rule}: update docs/rules.md"
    else:
        assert theirs == report.ok, theirs


def test_missing_labels_are_a05_where_pyusid_raises(tmp_path, usid):
    path = compliant_file(tmp_path / "labels.h5")
    with h5py.File(path, "r+") as file:
        del file[f"{CHANNEL}/Position_Values"].attrs["labels"]
    assert validate(path).rule_ids() == {"A05"}
    assert pyusid_verdict(usid, path) == "raises KeyError"


def test_signed_indices_are_a_warning(tmp_path):
    path = compliant_file(tmp_path / "signed.h5")
    with h5py.File(path, "r+") as file:
        break_a03_signed(file)
    report = validate(path)
    assert report.ok and [(f.rule, f.severity) for f in report.findings] == [("A03", "warning")]


def test_validator_never_reads_the_main_data(tmp_path, h5py_reads):
    validate(compliant_file(tmp_path / "ok.h5"))
    assert f"/{MAIN}" not in h5py_reads and h5py_reads  # the ancillaries are read, the Main data is not


def test_real_files_are_compliant(shared_data):
    for path in sorted((shared_data / "usid").glob("*.h5")):
        report = validate(path)
        assert report.ok, report.to_text()
        assert not report.errors


def test_other_hdf5_files_give_findings_not_exceptions(shared_data, tmp_path):
    for path in sorted((shared_data / "nexus").glob("*.nxs")):
        report = validate(path)
        assert not report.ok and report.rule_ids() == {"F01"}
    netcdf = tmp_path / "plain.nc"
    with h5py.File(netcdf, "w") as file:
        file.create_dataset("x", data=np.arange(3))
        file.attrs["Conventions"] = "CF-1.8"
    assert validate(netcdf).rule_ids() == {"F01"}


def test_an_index_far_past_the_rows_is_a07_alone(tmp_path):
    """An index of 4e9 in a table of 4 columns: A07, and no table of 4e9 values built to check A09."""
    path = compliant_file(tmp_path / "far.h5")
    with h5py.File(path, "r+") as file:
        table = file[f"{CHANNEL}/Spectroscopic_Indices"][()]
        table[0, 3] = 4_000_000_000
        replace_dataset(file, f"{CHANNEL}/Spectroscopic_Indices", table)
    report = validate(path)
    assert report.rule_ids() == {"A07"}, report.to_text()
    assert "largest index 4000000000" in report.to_text()


def test_every_reference_dangling(tmp_path):
    path = compliant_file(tmp_path / "dangling.h5")
    with h5py.File(path, "r+") as file:
        del file[CHANNEL + "/Position_Indices"], file[CHANNEL + "/Position_Values"]
        del file[CHANNEL + "/Spectroscopic_Indices"], file[CHANNEL + "/Spectroscopic_Values"]
    report = validate(path)
    assert not report.ok and {f.rule for f in report.errors} == {"M05"} and len(report.errors) == 4


def test_unreadable_inputs_raise_one_clear_error(tmp_path, shared_data):
    empty = tmp_path / "empty.h5"
    empty.write_bytes(b"")
    text = tmp_path / "notes.h5"
    text.write_text("not hdf5\n")
    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes((shared_data / "usid" / "SingFreqPFM_0003.h5").read_bytes()[:40000])
    garbage = tmp_path / "garbage.h5"
    garbage.write_bytes(bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8)))
    messages = {}
    for path in (empty, text, truncated, garbage):
        with pytest.raises(UnreadableFileError) as caught:
            validate(path)
        messages[path.name] = caught.value.message
        assert str(path) in str(caught.value)
    assert "empty" in messages["empty.h5"]
    assert "truncated" in messages["truncated.h5"]
    assert "not an HDF5 file" in messages["garbage.h5"]


def test_report_as_json_and_text(tmp_path):
    report = validate(broken_file(tmp_path, "A09"))
    data = json.loads(report.to_json())
    assert data["compliant"] is False and data["findings"][0]["rule"] == "A09"
    assert "A09" in report.to_text() and "NOT USID-compliant" in report.to_text()


def test_the_marked_walk_finds_what_visititems_finds(tmp_path):
    """`hdf.marked` (libhdf5's walk, objects opened only when they can match) finds the same objects,
    in the same order, as h5py's visititems with the same test: hard links once, soft and external
    links not followed, groups and datasets told apart, `every` and `where` and `first` honoured."""
    import h5py

    from usidbridge.hdf import holds_marked, marked

    path = tmp_path / "walk.h5"
    with h5py.File(path, "w") as file:
        for name in ("b/one", "a/two", "a/deep/three", "c/plain"):
            file.create_dataset(name, data=[1, 2])
        for name in ("b/one", "a/two", "a/deep/three"):
            file[name].attrs["Position_Indices"] = 1
        file["a/two"].attrs["Spectroscopic_Indices"] = 1
        file["a/deep"].attrs["Position_Indices"] = 1  # a group: not a dataset
        file["c/hard"] = file["b/one"]  # a second hard link: visited once
        file["c/soft"] = h5py.SoftLink("/a/two")
        file["c/outside"] = h5py.ExternalLink("elsewhere.h5", "/x")
        file["c"].attrs["NX_class"] = "NXdata"
        file["a"].attrs["NX_class"] = "NXentry"
    with h5py.File(path, "r") as file:
        def reference(kind, test):
            found = []
            file.visititems(lambda _name, obj: found.append(obj.name) if isinstance(obj, kind) and test(obj) else None)
            return found

        assert [item.name for item in marked(file, h5py.Dataset, ["Position_Indices"])] == reference(h5py.Dataset, lambda obj: "Position_Indices" in obj.attrs)
        assert [item.name for item in marked(file, h5py.Dataset, ["Position_Indices", "Spectroscopic_Indices"], every=True)] == ["/a/two"]
        assert [item.name for item in marked(file, h5py.Group, ["Position_Indices"])] == ["/a/deep"]
        nxdata = marked(file, h5py.Group, ["NX_class"], where=lambda group: group.attrs["NX_class"] == "NXdata")
        assert [item.name for item in nxdata] == ["/c"]
        assert len(marked(file, h5py.Dataset, ["Position_Indices"], first=True)) == 1
        assert holds_marked(file, h5py.Dataset, ["Position_Indices"]) and not holds_marked(file, h5py.Dataset, ["Nothing"])
        assert [item.name for item in marked(file["a"], h5py.Dataset, ["Position_Indices"])] == reference(h5py.Dataset, lambda obj: obj.name.startswith("/a/") and "Position_Indices" in obj.attrs)
