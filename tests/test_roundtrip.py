"""Round trips through every registered writer: any loss a format's profile does not declare is a bug."""

import json
import subprocess
import sys

import numpy as np
from hypothesis import HealthCheck, given, settings

import usidbridge as ub

from conftest import FIXTURES
from strategies import datasets


@given(dataset=datasets())
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_every_writer_declares_its_losses(dataset):
    reports = ub.roundtrip(dataset)
    assert {report.format for report in reports} == {format.name for format in ub.formats() if format.can_write}
    for report in reports:
        assert report.ok, (report.format, report.undeclared_losses())


def test_statuses_on_a_complex_dataset():
    dims = [ub.Dimension("Y", "nm", 2), ub.Dimension("X", "nm", 3)]
    dataset = ub.Dataset.from_ndarray(np.arange(6).reshape(2, 3) * (1 + 1j), dims, quantity="Response", units="V", metadata={"operator": "ada"})
    reports = {report.format: report for report in ub.roundtrip(dataset)}
    assert reports["h5usid"].features["data"].status == "kept"
    assert reports["netcdf"].features["data"].status == "encoded"
    assert reports["tiff"].features["data"].status == "refused" and "complex" in reports["tiff"].features["data"].detail
    assert reports["spec"].features["data"].status == "refused"
    assert all(report.ok for report in reports.values())


def test_declared_losses_are_reported_as_lost_not_as_bugs():
    dataset = ub.Dataset.from_ndarray(np.arange(4, dtype=np.uint8), [ub.Dimension("T", "K", [1.0, 2.0, 4.0, 8.0])], quantity="Counts", units="cts", metadata={"sample": "Si"})
    (report,) = ub.roundtrip(dataset, via="spec")
    statuses = {name: result.status for name, result in report.features.items()}
    assert statuses["dtype"] == "lost" and statuses["quantity"] == "lost" and statuses["metadata"] == "lost"
    assert report.ok  # SPEC's profile declares these: no units, one float type, no place for user metadata


def test_roundtrip_command_table_and_json():
    path = FIXTURES / "pyusid_iv_map.h5"
    table = subprocess.run([sys.executable, "-m", "usidbridge", "roundtrip", str(path)], capture_output=True, text=True)
    assert table.returncode == 0 and "nexus" in table.stdout and "kept" in table.stdout
    result = subprocess.run([sys.executable, "-m", "usidbridge", "roundtrip", str(path), "--via", "netcdf", "--json"], capture_output=True, text=True)
    (report,) = json.loads(result.stdout)
    assert result.returncode == 0 and report["format"] == "netcdf" and report["ok"]
    assert report["features"]["dims"]["status"] == "kept"
