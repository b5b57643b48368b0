"""Instrument files usidbridge recognises but does not read yet, so that they end in advice, not in
"no known format recognises this file".

==============================================  ================================================
signature                                       what the error says
==============================================  ================================================
NT-MDT ``.mdt`` (``01 B0 93 FF``)               NT-MDT; Gwyddion reads it: save as .gwy
Nanosurf ``.nid`` (``[DataSet]`` header)        Nanosurf; the same
WSxM (``WSxM file copyright``)                  WSxM; the same
Omicron MATRIX (``ONTMATRX``)                   Omicron MATRIX; the same
==============================================  ================================================

Gwyddion reads every one of these with its calibration, and usidbridge reads Gwyddion's ``.gwy``,
so the error gives that route. The sniff scores 1: any format that reads the file wins.
"""

from __future__ import annotations

from pathlib import Path

from usidbridge.errors import UnsupportedFeatureError
from usidbridge.model import Dataset
from usidbridge.registry import Format, Profile

SIGNATURES = (
    (lambda head: head.startswith(b"\x01\xb0\x93\xff"), "an NT-MDT .mdt file"),
    (lambda head: head.lstrip(b"\xef\xbb\xbf").startswith(b"[DataSet]"), "a Nanosurf .nid file"),
    (lambda head: head.startswith(b"WSxM file copyright"), "a WSxM file"),
    (lambda head: head[:8] == b"ONTMATRX", "an Omicron MATRIX file"),
)


def recognised(head: bytes) -> str | None:
    """What the first bytes say the file is, among the formats of the module text."""
    return next((what for matches, what in SIGNATURES if matches(head)), None)


class RecognisedFormat(Format):
    name = "recognised"
    description = "instrument files recognised but not read yet (NT-MDT, Nanosurf, WSxM, Omicron MATRIX): the error says how to convert them"
    profile = Profile()

    def sniff(self, head: bytes, path: Path) -> int:
        return 1 if recognised(head) else 0

    def read(self, path: Path, *, lazy: bool = False) -> list[Dataset]:
        with open(path, "rb") as handle:
            what = recognised(handle.read(64)) or "an instrument file"
        raise UnsupportedFeatureError(f"this is {what}, which usidbridge does not read yet: open it in Gwyddion (gwyddion.net), save it as .gwy, and convert that", path)


FORMAT = RecognisedFormat()
