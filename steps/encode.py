"""Encoding: a corpus -> pooled document embeddings in resumable shards, locally or as Ray tasks.

The functions behind `python -m pipeline.encode` (whose docstring says what the stage does), kept on their own floor
so that other stages, studies and the Python API call them without one stage importing another.
"""
from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from tqdm import tqdm

from common import layout
from common.errors import InputError
from common.threads import claim_cores
from encoders.embedder import Embedder, EncodedBatch
from encoders.models import load_model, pick_device, pick_dtype
from encoders.splade import SpladeEncoder
from plumbing.artifacts import folder_lock, manifest, read_json, write_json
from plumbing.datasets import Dataset
from plumbing.settings import DataSettings, ModelSettings
from plumbing.shards import read_shard, read_shards, shard_complete, write_shard

SHARD_SIZE = 256


def encode_corpus(dataset: Dataset, data: DataSettings, model: ModelSettings, shards: int = 1, shard: int = 0,
                  shard_size: int = SHARD_SIZE) -> Path:
    preset = model.preset
    folder = model.embeddings_dir(data)
    doc_ids = list(dataset.corpus)
    if shard_size <= 0:
        raise InputError(f"shard-size={shard_size}: must be a positive number of documents")
    n_shards = max(1, -(-len(doc_ids) // shard_size))
    fingerprint = dataset.fingerprint
    settings = {"model": preset.name, "preset": preset.describe(), "dataset": dataset.name,
                "documents": len(doc_ids), "shard_size": shard_size, "shards": n_shards,
                "corpus_sha1": fingerprint["corpus_sha1"]}
    dtype = pick_dtype(model.dtype, pick_device(model.device))
    if dtype != torch.float32:  # bf16 embeddings are another artifact: never mixed into float32 shards on resume
        settings["dtype"] = str(dtype).removeprefix("torch.")
    with folder_lock(folder, part=f"part-{shard}-of-{shards}" if shards > 1 else ""):
        settings_path = folder / "settings.json"
        if settings_path.exists():
            previous = read_json(settings_path)
            # Embeddings written before the corpus hash was recorded carry none: their document count still checks.
            compared = {k: v for k, v in settings.items() if k in previous or k != "corpus_sha1"}
            if {k: previous.get(k) for k in compared} != compared:
                changed = sorted(k for k in compared if previous.get(k) != compared.get(k))
                what = "another corpus" if "corpus_sha1" in changed or "documents" in changed else "other settings"
                raise InputError(f"{folder} holds embeddings of {what} ({', '.join(changed)} differ); "
                                 f"delete that folder, or name this corpus apart (dataset=<another name>)")
        mine = [s for s in range(n_shards) if s % shards == shard]
        todo = [s for s in mine if not shard_complete(folder, s)]
        started = time.time()
        device_used = "reused from the full-corpus embeddings" if todo else model.device
        reused = _full_corpus_rows(data, preset, [d for s in todo for d in doc_ids[s * shard_size:(s + 1) * shard_size]],
                                   settings.get("dtype"), model.name)
        if todo and reused:
            _claim(settings_path, settings)
            for number in todo:
                ids = doc_ids[number * shard_size:(number + 1) * shard_size]
                write_shard(folder, number, ids, EncodedBatch(np.stack([reused[d][0] for d in ids]),
                                                               [reused[d][1] for d in ids],
                                                               np.array([reused[d][2] for d in ids], dtype=bool)))
            print(f"slice taken from the full-corpus embeddings of {preset.name} (no forward pass)")
        elif todo:
            claim_cores()
            loaded = load_model(preset, model.device, model.dtype)
            _claim(settings_path, settings)
            device_used = f"{loaded.device} ({str(loaded.dtype).removeprefix('torch.')})"
            embedder = SpladeEncoder(preset, loaded) if preset.kind == "splade" else Embedder(preset, loaded)
            total = sum(len(doc_ids[s * shard_size:(s + 1) * shard_size]) for s in todo)
            with tqdm(total=total, desc=f"encode {preset.name}", unit="doc") as bar:
                for number in todo:
                    ids = doc_ids[number * shard_size:(number + 1) * shard_size]
                    batch = embedder.encode([dataset.corpus[d].contents for d in ids], progress=bar)
                    write_shard(folder, number, ids, batch)
        elapsed = time.time() - started
        if (todo or not (folder / "manifest.json").exists()) and all(shard_complete(folder, s) for s in range(n_shards)):
            _write_manifest(folder, settings, dataset.source, elapsed, len(todo), device_used)
        elif not all(shard_complete(folder, s) for s in range(n_shards)):
            missing = sum(not shard_complete(folder, s) for s in range(n_shards))
            print(f"part {shard}/{shards} done; {missing} shard(s) of other parts still missing")
    return folder


def _claim(settings_path: Path, settings: dict) -> None:
    """Write the folder's settings once the model has loaded (or the rows are at hand): a model that cannot be
    loaded, or a corpus refused, leaves no settings.json behind that a later run would have to match."""
    if not settings_path.exists():
        write_json(settings_path, settings)


def _full_corpus_rows(data: DataSettings, preset, wanted: list[str], dtype: str | None, folder_name: str
                      ) -> dict | None:
    """For a `--limit` slice: its documents' rows from complete full-corpus embeddings of the same preset and dtype,
    if they were made from the very corpus this slice is cut from (its fingerprint, not only its document ids).

    A slice's documents are corpus documents, so their vectors are the full run's; reusing them makes slice
    experiments (another pooling, a quick eval) free once the corpus is encoded."""
    if not data.limit or not wanted or preset.kind != "decoder":
        return None
    full = layout.embeddings_dir(data.name, folder_name)
    if not (full / "manifest.json").is_file():
        return None
    info = read_json(full / "manifest.json", "embeddings manifest")
    if not info.get("complete") or info.get("preset") != preset.describe() or info.get("dtype") != dtype:
        return None
    if info.get("corpus_sha1") != replace(data, limit=None).load().fingerprint["corpus_sha1"]:
        print(f"full-corpus embeddings {full} were made from another corpus than this slice's; encoding the slice")
        return None
    need, rows = set(wanted), {}
    for shard in read_shards(full):
        for row, doc_id in enumerate(shard.doc_ids):
            if doc_id in need:
                rows[doc_id] = (np.array(shard.vectors[row]), shard.tokens[row], bool(shard.truncated[row]))
    return rows if len(rows) == len(need) else None


def _write_manifest(folder: Path, settings: dict, source: str, elapsed: float, encoded: int, device: str) -> None:
    previous = (folder / "manifest.json")
    timings = read_json(previous).get("timings", {}) if previous.exists() else {}
    counts = {"documents": 0, "empty_documents": 0, "truncated_documents": 0, "tokens": 0}
    for number in range(settings["shards"]):
        shard = read_shard(folder, number)
        lengths = np.array([len(tokens) for tokens in shard.tokens], dtype=np.int64)
        counts["documents"] += len(lengths)
        counts["empty_documents"] += int((lengths == 0).sum())
        counts["truncated_documents"] += int(shard.truncated.sum())
        counts["tokens"] += int(lengths.sum())
    if counts["documents"] != settings["documents"]:
        raise InputError(f"{folder}: shards hold {counts['documents']} documents, corpus has {settings['documents']}; "
                         f"delete the folder and rerun")
    counts["avg_tokens_per_document"] = round(counts["tokens"] / max(1, counts["documents"]), 1)
    if encoded:
        timings = {"seconds_last_run": round(elapsed, 1), "shards_encoded_last_run": encoded,
                   "docs_per_second_last_run": round(min(encoded * settings["shard_size"], settings["documents"]) / max(elapsed, 1e-9), 2),
                   "device": device}
    write_json(folder / "manifest.json", manifest("encode", **settings, corpus_source=source, complete=True, counts=counts, timings=timings,
                                                  normed="pooled from last_hidden_state, already after the final norm"))


def encode_part(dataset: Dataset, data: DataSettings, model: ModelSettings, shard_size: int, parts: int,
                part: int) -> str:
    """One Ray task: part `part` of `parts` (every parts-th shard), in the worker's own process and model load."""
    return str(encode_corpus(dataset, data, model, parts, part, shard_size))


def encode_on_ray(dataset: Dataset, data: DataSettings, model: ModelSettings, workers: int = 2,
                  gpus_per_worker: float = 0.0, shard_size: int = SHARD_SIZE,
                  part_function: Callable[..., str] = encode_part) -> Path:
    """The parts as Ray tasks (engines/ray_executor.py), then the manifest, written once by the driver: a retried
    part skips its complete shards, and the shard a dead worker was in was never renamed into place."""
    from engines.ray_executor import run_parts_on_ray

    run_parts_on_ray(part_function, dataset, (data, model, shard_size), workers, gpus_per_worker)
    return encode_corpus(dataset, data, model, shard_size=shard_size)  # every shard is complete: writes the manifest
