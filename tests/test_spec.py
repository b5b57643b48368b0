"""SPEC: our parser against silx.io.specfile on the PyMca file and on hand-written SPEC text."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import usidbridge as ub
from usidbridge.errors import UnreadableFileError

from conftest import FIXTURES, need
from test_cli import assert_one_line_error, run

SPEC_TEXT = """#F /data/run7.spec
#E 1700000000
#D Tue Nov 14 22:13:20 2023
#C run7  User = beamline
#O0 Two Theta  Theta  chi
#O1 phi  tsz

#S 1  ascan  th 0 1 3 0.5
#D Tue Nov 14 22:14:00 2023
#T 0.5  (Seconds)
#G0 0 0 1 0
#Q 1 0 0
#P0 10 5.5 0
#P1 90 -1.25
#N 4
#@MCA 8C
#@CHANN 8 0 14 2
#@CALIB 0.1 0.02 0.0001
#L Theta  H K  Monitor  Detector
#C comment before the data
@A 1 2 3 4 \\
5 6 7 8
@A 10 20 30 40 50 60 70 80
0 1 1000 5
@A 2 3 4 5 6 7 8 9
@A 11 21 31 41 \\
51 61 71 81
0.333 1 1000 6
#C beam lost and back
@A 3 4 5 6 7 8 9 10
@A 12 22 32 42 52 62 72 82
0.667 1 1000 7
@A 4 5 6 7 8 9 10 11
@A 13 23 33 43 53 63 73 83
1.0 1 1000 8

#S 1  ascan  th 0 1 1 0.5
#N 2
#L Theta  Detector
0 11
1 12

#S 2  mesh  chi 0 1 1 phi 0 2 2 0.1
#D Tue Nov 14 22:20:00 2023
#L chi  phi  Detector
0 0 1
1.001 0 2
0 1 3
1.002 1.001 4
0 2 5
1 2 6

#S 3  timescan  0.1
#L Time  Epoch  Detector

#S 4  ascan  tsz -1 1 4 0.2
#N 3
#L tsz  Monitor  Detector
-1 500 1
-0.5 500 2
0 500 3
0.5 5
"""


@pytest.fixture(scope="module")
def silx_specfile():
    return need("silx.io.specfile")


@pytest.fixture
def spec_file(tmp_path):
    path = tmp_path / "run7.spec"
    path.write_text(SPEC_TEXT)
    return path


def by_scan(datasets):
    scans = {}
    for dataset in datasets:
        key = dataset.source.rpartition("::")[2].split("/")[0].removeprefix("scan ")
        scans.setdefault(key, []).append(dataset)
    return scans


def compare_with_silx(path, silx_specfile):
    """Every scan: labels, columns and MCA as silx sees them."""
    ours = by_scan(ub.read(path))
    peer = silx_specfile.SpecFile(str(path))
    compared = 0
    for key in peer.keys():
        scan = peer[key]
        if scan.data.size == 0:
            assert key not in ours
            continue
        datasets = ours[key]
        columns = [d for d in datasets if d.shape[1] == 1]
        spectra = [d for d in datasets if d.shape[1] > 1]
        first = columns[0]
        mesh = first.pos.ndim == 2
        position_labels = list(first.pos.labels[::-1]) if mesh else list(first.pos.labels)
        channel_labels = [d.quantity for d in columns if not (mesh and d.quantity in position_labels)]
        assert scan.labels == position_labels + channel_labels
        points = first.shape[0]
        for column, label in enumerate(scan.labels):
            if not mesh and column == 0:
                assert np.array_equal(first.pos.dims[0].values, scan.data[0][:points])
                continue
            dataset = next(d for d in columns if d.quantity == label)
            assert np.array_equal(np.asarray(dataset.data).ravel(), scan.data[column][:points]), (key, label)
        if len(scan.mca):
            per_point = len(scan.mca) // scan.data.shape[1]
            assert len(spectra) == per_point
            for index in range(points * per_point):
                assert np.array_equal(spectra[index % per_point].data[index // per_point], scan.mca[index])
            channels = np.asarray(scan.mca.channels[0], dtype=float)
            a, b, c = scan.mca.calibration[0]
            assert np.allclose(spectra[0].spec.dims[0].values, a + b * channels + c * channels**2, rtol=1e-12)
        compared += 1
    return compared


def test_pymca_exafs_file_matches_silx(shared_data, silx_specfile):
    assert compare_with_silx(shared_data / "spec" / "EXAFS_Cu.dat", silx_specfile) == 1
    (dataset,) = ub.read(shared_data / "spec" / "EXAFS_Cu.dat")
    assert dataset.quantity == "Column 2" and dataset.pos.labels == ("Column 1",) and dataset.shape == (1461, 1)


def test_hand_written_spec_matches_silx(spec_file, silx_specfile):
    assert compare_with_silx(spec_file, silx_specfile) == 4


def test_scan_details(spec_file):
    scans = by_scan(ub.read(spec_file))
    assert sorted(scans) == ["1.1", "1.2", "2.1", "4.1"]  # scan 3 is empty
    detector = next(d for d in scans["1.1"] if d.quantity == "Detector")
    spec = detector.metadata["spec"]
    assert spec["motors"] == {"Two Theta": 10.0, "Theta": 5.5, "chi": 0.0, "phi": 90.0, "tsz": -1.25}
    assert spec["count_time"] == 0.5 and spec["hkl"] == [1.0, 0.0, 0.0] and spec["geometry"] == {"G0": [0.0, 0.0, 1.0, 0.0]}
    assert spec["comments"] == ["comment before the data", "beam lost and back"]
    assert spec["file_header"]["comments"] == ["run7  User = beamline"] and spec["file_header"]["E"] == "1700000000"
    mca = [d for d in scans["1.1"] if d.shape[1] > 1]
    assert [d.quantity for d in mca] == ["MCA 0", "MCA 1"]
    energy = mca[0].spec.dims[0]
    channels = np.arange(0, 15, 2)
    assert energy.name == "Energy" and np.allclose(energy.values, 0.1 + 0.02 * channels + 0.0001 * channels**2)
    mesh = next(d for d in scans["2.1"] if d.quantity == "Detector")
    assert mesh.pos.labels == ("phi", "chi") and mesh.nd_shape == (3, 2, 1)
    assert mesh.to_ndarray(squeeze=True).tolist() == [[1, 2], [3, 4], [5, 6]]
    readback = next(d for d in scans["2.1"] if d.quantity == "chi")
    assert np.asarray(readback.data).ravel()[3] == 1.002  # the measured positions are kept as channels
    aborted = next(d for d in scans["4.1"] if d.quantity == "Detector")
    assert aborted.shape == (3, 1) and aborted.metadata["spec"]["aborted"]


def test_aborted_mesh_is_non_grid(tmp_path):
    path = tmp_path / "mesh.spec"
    path.write_text("#S 1 mesh x 0 1 2 y 0 1 1 1\n#L x  y  I\n0 0 1\n0.5 0 2\n1 0 3\n0 1 4\n")
    (_, _, intensity) = ub.read(path)
    assert not intensity.pos.is_grid and intensity.pos.size == 4
    assert ub.validate(ub.write(intensity, tmp_path / "mesh.h5")).ok


def test_written_spec_reads_back_in_silx(spec_file, silx_specfile, tmp_path):
    source = ub.read(spec_file)
    out = ub.write(source, tmp_path / "copy.spec")
    assert compare_with_silx(out, silx_specfile) == 4
    back = ub.read(out)
    assert len(back) == len(source)
    for mine, theirs in zip(back, source):
        assert mine.quantity == theirs.quantity and np.array_equal(np.asarray(mine.data), np.asarray(theirs.data))
        assert mine.pos.same_as(theirs.pos) or not theirs.pos.is_grid
    h5 = ub.write(source, tmp_path / "copy.h5")
    assert ub.validate(h5).ok and len(ub.read(h5)) == len(source)


finite = st.floats(-1e9, 1e9, allow_nan=False, width=64)


@given(
    values=st.lists(finite, min_size=1, max_size=12, unique=True),
    counters=st.integers(1, 3),
    data=st.data(),
)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_round_trip_one_position_dim(tmp_path, silx_specfile, values, counters, data):
    position = ub.Dimension("Energy keV", "", values)
    datasets = [
        ub.Dataset.from_ndarray(np.array(data.draw(st.lists(finite, min_size=len(values), max_size=len(values)))), [position], quantity=f"counter {index}", units="")
        for index in range(counters)
    ]
    out = ub.write(datasets, tmp_path / "rt.spec", overwrite=True)
    back = ub.read(out)
    assert [d.quantity for d in back] == [d.quantity for d in datasets]
    for mine, theirs in zip(back, datasets):
        assert np.array_equal(mine.data, theirs.data) and mine.pos.dims == theirs.pos.dims
    scan = silx_specfile.SpecFile(str(out))[0]
    assert scan.labels == ["Energy keV"] + [f"counter {index}" for index in range(counters)]
    assert np.array_equal(scan.data[0], values)


def test_bad_spec_files(tmp_path):
    cases = {
        "letters.spec": ("#S 1 ascan x 0 1 2 1\n#L x  I\n0 1\n0.5 one\n1 3\n", "line 4"),
        "columns.spec": ("#S 1 ascan x 0 1 2 1\n#L x  I\n0 1\n0.5 2 7\n1 3\n", "line 4"),
        "noscan.spec": ("#F x\n#C only a header\n", "no '#S'"),
        "badnumber.spec": ("#S one ascan\n", "line 1"),
    }
    for name, (text, words) in cases.items():
        path = tmp_path / name
        path.write_text(text)
        with pytest.raises(UnreadableFileError, match=words):
            ub.read(path, format="spec")
        result = run("convert", "--from", "spec", path, tmp_path / f"{path.stem}.h5")
        assert_one_line_error(result, str(path), words)
        assert not (tmp_path / f"{path.stem}.h5").exists()


def test_energy_scan_as_a_spectrum(shared_data, tmp_path):
    """-r scanned=spectroscopic: an EXAFS scan is one spectrum per counter at one position; auto finds energy motors."""
    path = shared_data / "spec" / "EXAFS_Cu.dat"
    as_map = ub.read(path)
    as_spectra = ub.read(path, scanned="spectroscopic")
    assert len(as_map) == len(as_spectra)
    for mapped, spectrum in zip(as_map, as_spectra):
        assert spectrum.pos.size == 1 and spectrum.spec.dims[0] == mapped.pos.dims[0]
        assert np.array_equal(spectrum.to_ndarray(squeeze=True), mapped.to_ndarray(squeeze=True))
        assert ub.validate(ub.write(spectrum, tmp_path / f"{spectrum.quantity}.h5", overwrite=True)).ok
    label = as_map[0].pos.dims[0].name
    auto = ub.read(path, scanned="auto")
    assert (auto[0].pos.size == 1) == bool(ub.converters.spec.ENERGY_MOTOR.match(label))
    with pytest.raises(ub.errors.UnsupportedFeatureError, match="scanned must be one of"):
        ub.read(path, scanned="sideways")


def test_mca_scan_as_spectra_over_motor_and_channel():
    (counter, *rest) = ub.read(FIXTURES / "demo_scans.spec", scanned="spectroscopic")
    mca = [dataset for dataset in [counter, *rest] if dataset.quantity.startswith("MCA")]
    assert mca
    for dataset in mca:
        assert dataset.pos.size == 1 and len(dataset.spec.dims) == 2
