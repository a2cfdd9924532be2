"""Encoding on Ray: the encode stage's parts as Ray tasks, on a local Ray or the cluster at RAY_ADDRESS.

Part i of N encodes every N-th shard starting at i, exactly as `--shards N --shard i` does (same shard files, same
atomic rename, same resume rule), with one model load per task. A task whose worker dies is retried by Ray; the
retry skips the shards already complete, and the shard the worker died in was never renamed into place, so it is
redone. After all parts, the driver writes the manifest once (the same function a single process runs).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from pipeline.datasets import Dataset
from pipeline.encode import SHARD_SIZE, encode_corpus
from pipeline.settings import DataSettings, ModelSettings

RETRIES = 3

# Ray's driver installs its own SIGSEGV/SIGBUS handlers (glog's failure handler) and leaves SIG_DFL behind after
# shutdown. A JVM in the same process (Lucene through pyjnius) uses SIGSEGV itself, for implicit null checks and
# stack banging, so after ray.init any such signal killed the whole process ("Segmentation fault" in the test
# suite, intermittently). Ray reads this switch when it is first imported, so it is set before that import.
os.environ.setdefault("RAY_DISABLE_FAILURE_SIGNAL_HANDLER", "1")


def encode_part(dataset: Dataset, data: DataSettings, model: ModelSettings, parts: int, part: int,
                shard_size: int) -> str:
    """One Ray task: part `part` of `parts`, in the worker's own process (its own model load)."""
    return str(encode_corpus(dataset, data, model, parts, part, shard_size))


def encode_on_ray(dataset: Dataset, data: DataSettings, model: ModelSettings, workers: int = 2,
                  gpus_per_worker: float = 0.0, shard_size: int = SHARD_SIZE,
                  part_function: Callable[..., str] = encode_part) -> Path:
    import ray

    started_here = not ray.is_initialized()
    if started_here:
        address = os.environ.get("RAY_ADDRESS")
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(num_cpus=max(workers, 1), include_dashboard=False, log_to_driver=False)
    try:
        task = ray.remote(num_cpus=1, num_gpus=gpus_per_worker, max_retries=RETRIES)(part_function)
        shared = ray.put(dataset)
        ray.get([task.remote(shared, data, model, workers, part, shard_size) for part in range(workers)])
    finally:
        if started_here:
            ray.shutdown()
    return encode_corpus(dataset, data, model, shard_size=shard_size)  # every shard is complete: writes the manifest
