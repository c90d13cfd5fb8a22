"""How much memory a data set held in RAM needs, checked against what the machine has before it is built."""

from __future__ import annotations

import os

GIB = 1024 ** 3


def available_bytes() -> int:
    """Memory the kernel could give this process now (MemAvailable), or the total where that is not known."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def check_fits(key: str, what: str, peak_bytes: int) -> None:
    """Refuse, naming `key`, a data set whose peak while it is built exceeds the memory available now."""
    have = available_bytes()
    if peak_bytes > have:
        raise ValueError(f"{key} is invalid: {what} need about {_size(peak_bytes)} while the data set is "
                         f"built, and {_size(have)} are available; allowed: settings whose data fit in "
                         "memory (fewer clips, frames or pixels)")


def _size(n: int) -> str:
    return f"{n / GIB:.1f} GiB" if n >= GIB else f"{n / 1024 ** 2:.1f} MiB"
