"""How many threads torch and OpenMP use, and how idle OpenMP threads wait: one policy for every stage.

Why: on a 2-core machine a second busy process used to slow a training step 8-12x. torch took `os.cpu_count()`
threads, ignoring the cores this process may actually run on (`os.sched_getaffinity`: a container's or taskset's
share), and OpenMP's default barrier spins: a thread whose work is done burns its core waiting for a sibling that
the scheduler has parked behind the other process. Passive waiting (`OMP_WAIT_POLICY=PASSIVE`) yields the core
instead. OpenMP reads the variable once, when its runtime loads (with torch), so importing this module before torch
sets it for the process; the Makefile exports it too, so every stage and test child starts with it.
`KEYTOKENS_THREADS=N` overrides the count (e.g. 1 per process when two jobs share 2 cores on purpose).
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def usable_cores() -> int:
    """Threads to use: `KEYTOKENS_THREADS` when set, else the cores this process may run on."""
    override = os.environ.get("KEYTOKENS_THREADS", "").strip()
    if override.isdigit() and int(override) > 0:
        return int(override)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # no affinity API (macOS): every core
        return os.cpu_count() or 1


def claim_cores() -> int:
    """Give torch `usable_cores()` intra-op threads; returns the count (recorded in manifests and bench rows)."""
    import torch

    threads = usable_cores()
    torch.set_num_threads(threads)
    return threads
