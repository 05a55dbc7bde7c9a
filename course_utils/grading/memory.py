"""A cap on the memory a grading process (nbgrader and the student's kernel) may take.

Without one, a notebook that keeps allocating (a list of tensors growing in a loop, a huge
``torch.zeros``) fills the machine until the kernel's out-of-memory killer picks a victim, which may
be another student's kernel or the grader itself. With ``RLIMIT_DATA`` set on the grading process
(and so inherited by the kernel it starts), an allocation beyond the limit fails at once inside the
notebook instead: Python raises ``MemoryError``, PyTorch ``RuntimeError: ... can't allocate memory``.
The cell errors, the tests that do not need it keep their points, and the note says why.

``RLIMIT_DATA`` counts the heap and private anonymous mappings (Linux >= 4.7), not the mapped shared
libraries: importing torch and course_utils needs about 1 GiB of it. It is enforced on Linux (on
macOS the call succeeds but is not enforced; on Windows :func:`cap_memory` says it cannot). In the
sandbox the kernel has no capabilities, so it cannot raise the limit. It does not count shared
memory (a shared ``mmap``, a ``memfd``, files in a tmpfs): the job's memory cgroup does
(``cgroups.py``), with the same limit.
"""

from __future__ import annotations

import re
import sys

DEFAULT_MEMORY_LIMIT = 4 * 2**30  # 4 GiB per notebook; `course grade --memory-limit`
_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([KMGT]?)(?:I?B)?", re.IGNORECASE)
# What an allocation beyond the limit raises: Python's MemoryError, or PyTorch's CPU allocator
# ("DefaultCPUAllocator: can't allocate memory ... Error code 12 (Cannot allocate memory)").
_OUT_OF_MEMORY = re.compile(r"can't allocate memory|Cannot allocate memory|out of memory", re.I)


def parse_size(text: str) -> int | None:
    """Bytes in ``text``: "4G", "512M", "1.5GiB", "2147483648"; "none"/"off"/"0" mean no limit.

    Units are binary (K = 1024). Raises ValueError for anything else, naming the accepted forms.
    """
    cleaned = text.strip()
    if cleaned.lower() in ("none", "off", "0", "unlimited"):
        return None
    match = _SIZE.fullmatch(cleaned)
    if match is None:
        raise ValueError(
            f"a memory limit is a size like 4G, 512M or 1.5GiB (or 'none'), got {text!r}"
        )
    size = int(float(match.group(1)) * _UNITS[match.group(2).upper()])
    if size < 2**28:
        raise ValueError(
            f"a memory limit below 256M cannot even import torch (about 1G), got {text!r}"
        )
    return size


def parse_bytes(text: str) -> int:
    """Bytes in ``text``: "50M", "1.5GiB", "1048576" (binary units); ValueError for anything else."""
    match = _SIZE.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"a size is a number of bytes like 50M, 1G or 1048576, got {text!r}")
    return int(float(match.group(1)) * _UNITS[match.group(2).upper()])


def describe(limit: int) -> str:
    """``4294967296`` -> "4 GiB"."""
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20)):
        if limit >= scale:
            return f"{limit / scale:g} {unit}"
    return f"{limit} bytes"


def cap_memory(limit: int | None) -> str | None:
    """Limit this process and its future children to ``limit`` bytes of data (None: no limit).

    Returns None when the limit is in place (or none was asked for), else why it is not.
    """
    if limit is None:
        return None
    try:
        import resource
    except ImportError:  # Windows
        return "memory is not capped on this system (no resource module)"
    try:
        resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
    except (ValueError, OSError) as error:
        return f"memory could not be capped at {describe(limit)}: {error}"
    return None


def enforced() -> bool:
    """Whether :func:`cap_memory` really limits allocations on this system (Linux only)."""
    return sys.platform.startswith("linux")


def is_out_of_memory(ename: str, evalue: str) -> bool:
    """Whether an error output (``ename``/``evalue`` of a notebook cell) is a failed allocation."""
    return ename == "MemoryError" or bool(_OUT_OF_MEMORY.search(evalue or ""))
