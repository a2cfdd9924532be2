"""A stage's parts as Ray tasks, on a local Ray or the cluster at RAY_ADDRESS.

The stage hands over a part function `f(shared, *arguments, parts, part)` and the object every part reads
(`shared`, put into Ray's object store once); part i of N runs as one task with one CPU (and `gpus_per_worker`
GPUs), retried by Ray when its worker dies. What a part writes, and how a retry resumes, is the stage's business
(the encode stage: every N-th shard starting at i, atomic renames, complete shards skipped).
"""
from __future__ import annotations

import os
from typing import Any, Callable

RETRIES = 3

# Ray's driver installs its own SIGSEGV/SIGBUS handlers (glog's failure handler) and leaves SIG_DFL behind after
# shutdown. A JVM in the same process (Lucene through pyjnius) uses SIGSEGV itself, for implicit null checks and
# stack banging, so after ray.init any such signal killed the whole process ("Segmentation fault" in the test
# suite, intermittently). Ray reads this switch when it is first imported, so it is set before that import.
os.environ.setdefault("RAY_DISABLE_FAILURE_SIGNAL_HANDLER", "1")


def run_parts_on_ray(part_function: Callable[..., Any], shared: Any, arguments: tuple, parts: int = 2,
                     gpus_per_worker: float = 0.0) -> list:
    """Run `part_function(shared, *arguments, parts, part)` for part = 0..parts-1 as Ray tasks; their results."""
    import ray

    started_here = not ray.is_initialized()
    if started_here:
        address = os.environ.get("RAY_ADDRESS")
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(num_cpus=max(parts, 1), include_dashboard=False, log_to_driver=False)
    try:
        task = ray.remote(num_cpus=1, num_gpus=gpus_per_worker, max_retries=RETRIES)(part_function)
        reference = ray.put(shared)
        return ray.get([task.remote(reference, *arguments, parts, part) for part in range(parts)])
    finally:
        if started_here:
            ray.shutdown()
