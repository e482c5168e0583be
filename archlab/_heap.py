"""Keep the C heap from hoarding freed tensor memory during CPU training.

A GHN training step allocates and frees hundreds of megabytes of activations per target network.
glibc's malloc raises its mmap threshold after such frees (up to 32 MiB), so later activations
come from the heap, which fragments and is not returned to the system: on CIFAR-10 at
meta-batch 8 the resident memory of ``archlab train`` climbed to 5.7 GB although one step needs
about 2 GB. Fixing the threshold keeps every large tensor in its own mapping, returned when freed.
That costs a page-fault round trip per large allocation, which slows inference-heavy work done
later in the same process (the demo's ranking stage ran 35% slower), so training scopes it with
:func:`returning_freed_memory` and leaves a high threshold behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import sys
from collections.abc import Iterator

_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number
DEFAULT_THRESHOLD = 256 * 1024
RELAXED_THRESHOLD = 32 * 1024 * 1024  # the ceiling of glibc's own dynamic raise on 64-bit systems


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


@contextlib.contextmanager
def returning_freed_memory(enabled: bool = True, nbytes: int = DEFAULT_THRESHOLD) -> Iterator[bool]:
    """Within the block, :func:`fix_mmap_threshold` (``nbytes``); afterwards raise the threshold
    to 32 MiB, where glibc's dynamic adjustment would have taken it, so that later allocations
    come from the heap again. Yields whether the threshold was set; ``enabled=False`` does nothing."""
    applied = enabled and fix_mmap_threshold(nbytes)
    try:
        yield applied
    finally:
        if applied:
            fix_mmap_threshold(RELAXED_THRESHOLD)
