"""Instrument files usidbridge recognises but does not read yet, so that they end in advice, not in
"no known format recognises this file".

==============================================  ================================================
signature                                       what the error says
==============================================  ================================================
Omicron MATRIX (``ONTMATRX``)                   Omicron MATRIX; Gwyddion reads it: save as .gwy
==============================================  ================================================

Gwyddion reads it with its calibration, and usidbridge reads Gwyddion's ``.gwy``,
so the error gives that route. The sniff scores 1: any format that reads the file wins.
"""

from __future__ import annotations

from pathlib import Path

from usidbridge.errors import UnsupportedFeatureError
from usidbridge.model import Dataset
from usidbridge.registry import Format, Profile

SIGNATURES = (
    (lambda head: head[:8] == b"ONTMATRX", "an Omicron MATRIX file"),
)


def recognised(head: bytes) -> str | None:
    """What the first bytes say the file is, among the formats of the module text."""
    return next((what for matches, what in SIGNATURES if matches(head)), None)


class RecognisedFormat(Format):
    name = "recognised"
    description = "instrument files recognised but not read yet (Omicron MATRIX): the error says how to convert them"
    profile = Profile()

    def sniff(self, head: bytes, path: Path) -> int:
        return 1 if recognised(head) else 0

    def read(self, path: Path, *, lazy: bool = False) -> list[Dataset]:
        with open(path, "rb") as handle:
            what = recognised(handle.read(64)) or "an instrument file"
        raise UnsupportedFeatureError(f"this is {what}, which usidbridge does not read yet: open it in Gwyddion (gwyddion.net), save it as .gwy, and convert that", path)


FORMAT = RecognisedFormat()
