"""Keep the memory a training step frees inside the process (glibc's malloc settings).

Why: a training step allocates and frees hundreds of MB of temporaries, most of them in the
backend's worker threads, whose glibc arenas hand the top of their heaps back to the kernel
once more than `M_TOP_PAD` (128 KiB by default) of it is free. The next step touches the same
amount of memory again, and every page of it costs the kernel a page fault. On a 2-core
AVX2 EPYC this took TensorFlow's `fit` of the README main job to 15 million page faults and
60 s of kernel time in three epochs, 250-270 ms a batch for a 136 ms step
(docs/performance.md, "Page faults"). Keeping 64 MiB of free top per arena, and the
threshold above which glibc maps a block on its own (and unmaps it when freed) at the
32 MiB that its dynamic threshold would reach anyway, removes nearly all of them. The
settings change where freed memory goes, never what is computed: the trained weights are
bit-identical.
"""

import ctypes
import ctypes.util
import sys

#: `mallopt` parameters of glibc's `<malloc.h>`.
M_TOP_PAD = -2
M_MMAP_THRESHOLD = -3

#: Free memory each heap keeps at its top instead of returning it to the kernel.
DEFAULT_TOP_PAD = 64 * 1024 * 1024
#: Blocks at least this large are mapped on their own; 32 MiB is glibc's largest allowed
#: value on 64-bit machines (`HEAP_MAX_SIZE / 2`) and the ceiling of its dynamic threshold.
DEFAULT_MMAP_THRESHOLD = 32 * 1024 * 1024


def _glibc():
    """glibc's `libc`, or None on any other C library (musl, macOS, Windows)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        version = libc.gnu_get_libc_version
    except (OSError, AttributeError):  # no libc found, or not glibc (musl has no version call)
        return None
    version.restype = ctypes.c_char_p
    return libc if version() else None


def retain_freed_memory(top_pad=DEFAULT_TOP_PAD, mmap_threshold=DEFAULT_MMAP_THRESHOLD):
    """Tells glibc's malloc to keep freed memory in the process rather than return it.

    It sets `M_TOP_PAD` and `M_MMAP_THRESHOLD` with `mallopt` for the whole process, for
    every heap and thread, until it exits. `scripts/fit.py` calls it before it trains
    (`RunConfig.retain_freed_memory`, `--no-retain-freed-memory` to skip it); call it at the
    start of your own training script for the same effect. The cost is memory: each arena
    may hold up to `top_pad` bytes it does not use, but only memory it once used.

    Args:
        top_pad: free bytes a heap keeps at its top before giving memory back.
        mmap_threshold: allocations of at least this many bytes get a mapping of their own,
            which is unmapped when they are freed; at most 32 MiB.

    Returns:
        True if both settings were applied; False where the C library is not glibc, where
        nothing is changed.

    Raises:
        ValueError: a negative `top_pad`, or an `mmap_threshold` outside (0, 32 MiB].

    Example:

    >>> from keras_asanet.training import retain_freed_memory
    >>> retain_freed_memory()  # doctest: +SKIP
    True
    """
    if int(top_pad) < 0:
        raise ValueError(f"top_pad must be >= 0 bytes, got {top_pad!r}.")
    if not 0 < int(mmap_threshold) <= DEFAULT_MMAP_THRESHOLD:
        raise ValueError(
            f"mmap_threshold must be in (0, {DEFAULT_MMAP_THRESHOLD}] bytes (glibc refuses "
            f"larger values on 64-bit machines), got {mmap_threshold!r}."
        )
    libc = _glibc()
    if libc is None:
        return False
    libc.mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    # mallopt answers 1 on success, 0 on a refused value.
    return bool(libc.mallopt(M_TOP_PAD, int(top_pad))) and bool(
        libc.mallopt(M_MMAP_THRESHOLD, int(mmap_threshold))
    )
