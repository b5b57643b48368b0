"""sidpy, in memory: the bridge to pycroscopy's readers (SciFiReaders) and tools.

``from_sidpy(sidpy_dataset)`` then ``ub.write`` gives compliant h5USID; ``to_sidpy(dataset)`` gives
pycroscopy's tools a ``sidpy.Dataset``. The mapping is the hub's (`usidbridge.sid`, shared with the
NSID format): SPATIAL, RECIPROCAL, TEMPORAL dims ↔ position dims, SPECTRAL and CHANNEL dims ↔
spectroscopic dims. No file format of its own: NSID files are `usidbridge.converters.nsid`'s.
"""

from usidbridge.sid import from_sidpy, to_sidpy

__all__ = ["from_sidpy", "to_sidpy"]
