"""Keep freed memory in the process for reuse, instead of returning it to the OS (glibc only).

glibc's malloc serves every block above its mmap threshold (at most 32 MiB) with a fresh ``mmap``
and unmaps it on free, so each new activation of a CPU training step (StyleGAN3's upsampled
filtered_lrelu tensors at batch 32 are ~100 MiB) is faulted in page by page and zeroed by the
kernel again: measured, up to 5x the time of the arithmetic of an elementwise op, and 40% of a
StyleGAN3 CPU run as system time. ``mallopt(M_MMAP_MAX, 0)`` serves large blocks from the heap and
a 1 GiB trim threshold keeps freed blocks there, so most large blocks reuse pages freed before
(measured on a StyleGAN3-T CPU run: 1.0 M page faults instead of 6.8 M, 5 s of system time instead
of 24; not every block: glibc still maps some afresh). The process keeps its peak heap until it exits.
"""
import ctypes
import ctypes.util

M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
TRIM_THRESHOLD = 1 << 30


def keep_freed_memory() -> bool:
    """Switch glibc's malloc to heap-only allocation with a 1 GiB trim threshold; False (and no
    change) where the C library is not glibc."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
        libc.gnu_get_libc_version
    except (OSError, AttributeError, TypeError):
        return False
    return bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
