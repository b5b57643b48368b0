"""The README's Python examples run as written, each in a fresh interpreter (only what the block
imports is imported), in a folder holding the ``scan.h5`` they read (a pyUSID-written map)."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import FIXTURES

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


def test_the_readme_has_python_examples():
    assert len(BLOCKS) >= 3


@pytest.mark.parametrize("block", BLOCKS, ids=[f"block{number}" for number in range(len(BLOCKS))])
def test_readme_example_runs_as_written(tmp_path, block):
    shutil.copy(FIXTURES / "pyusid_iv_map.h5", tmp_path / "scan.h5")
    result = subprocess.run([sys.executable, "-c", block], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
