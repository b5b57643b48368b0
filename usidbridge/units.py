"""Unit text as instruments write it (``nm``, ``um``, ``µm``, ``pA``, ``kHz``, ``Å``, ``º``) in SI.

Scanning-probe files store values in the unit their software shows (nm, µm, nA, mV); USID
users compare files from many instruments, so the readers convert to the SI base unit and
scale the values once, here, with one table. A unit that is not a prefix and a base unit below
(``%``, ``counts``, ``1/cm``) is kept as it is, with the factor 1.
"""

from __future__ import annotations

PREFIXES = {"": 1.0, "f": 1e-15, "p": 1e-12, "n": 1e-9, "u": 1e-6, "µ": 1e-6, "μ": 1e-6, "m": 1e-3, "c": 1e-2, "k": 1e3, "M": 1e6, "G": 1e9}
BASES = ("m", "A", "V", "N", "s", "Hz", "F", "W", "T", "Pa", "Ohm", "Ω", "S")
SPECIAL = {"Å": ("m", 1e-10), "º": ("deg", 1.0), "°": ("deg", 1.0), "deg": ("deg", 1.0), "degree": ("deg", 1.0), "degrees": ("deg", 1.0)}


def to_si(text: str) -> tuple[str, float]:
    """The SI base unit of `text` and the factor that converts its values: ``"nm"`` → ``("m", 1e-9)``."""
    text = text.strip()
    if text in SPECIAL:
        return SPECIAL[text]
    if text in BASES:
        return text, 1.0
    prefix, base = text[:1], text[1:]
    if prefix in PREFIXES and base in BASES:
        return base, PREFIXES[prefix]
    return text, 1.0
