"""Keep the C heap from hoarding freed tensor memory during CPU training.

A GHN training step allocates and frees hundreds of megabytes of activations per target network.
glibc's malloc raises its mmap threshold after such frees (up to 32 MiB), so later activations
come from the heap, which fragments and is not returned to the system: on CIFAR-10 at
meta-batch 8 the resident memory of ``archlab train`` climbed to 5.7 GB although one step needs
about 2 GB. Fixing the threshold keeps every large tensor in its own mapping, returned when freed.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number
DEFAULT_THRESHOLD = 256 * 1024


def fix_mmap_threshold(nbytes: int = DEFAULT_THRESHOLD) -> bool:
    """Serve allocations of at least ``nbytes`` from their own mappings for the rest of the
    process (glibc ``mallopt(M_MMAP_THRESHOLD)``, which also stops its dynamic raise).
    Returns False where it does not apply (not Linux/glibc); never raises."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, int(nbytes)))
    except (OSError, AttributeError):  # musl and others have no mallopt
        return False
