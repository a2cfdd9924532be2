"""CPU forward paths side by side, for `make bench`: what each costs against today's float32 path and what it changes.

Each path embeds the same documents with the same preset; its speed is a ratio to float32 timed in the same process
(alternating rounds, so a neighbour's load hits both), its quality the cosine of its embeddings to float32's and the
overlap of their top-64 aligned tokens. Paths: float32 (2 threads, and 1 thread), bfloat16 weights (oneDNN; fast
only where the CPU has AVX512-BF16 or AMX), int8 dynamic quantisation of every linear layer (fbgemm). The same for a
training step: float32 against bfloat16 autocast, each alone and beside a busy process. Bucketing is not a path here: `Embedder.encode` already sorts each
shard's documents by length, so a batch pads to its own longest document.
"""
from __future__ import annotations

import copy
import os
import subprocess
import sys
import time
from dataclasses import replace

import numpy as np
import torch

from encoders.embedder import Embedder
from encoders.models import LoadedModel, cpu_has_native_bf16
from encoders.presets import Preset

ROUNDS = 2
TOP = 64


def _bfloat16(loaded: LoadedModel) -> LoadedModel:
    """A bfloat16 copy of a float32 model (the original stays float32)."""
    return replace(loaded, model=copy.deepcopy(loaded.model).to(torch.bfloat16), dtype=torch.bfloat16)


def _paths(loaded: LoadedModel) -> dict[str, LoadedModel]:
    int8 = torch.ao.quantization.quantize_dynamic(copy.deepcopy(loaded.model), {torch.nn.Linear}, dtype=torch.qint8)
    return {"float32": loaded, "bfloat16": _bfloat16(loaded), "int8 dynamic": replace(loaded, model=int8)}


def _agreement(reference: np.ndarray, other: np.ndarray, lm_head: torch.Tensor) -> dict:
    cos = (reference * other).sum(1) / np.linalg.norm(reference, axis=1) / np.linalg.norm(other, axis=1)
    head = lm_head.numpy()
    ref_top = np.argsort(-(reference @ head.T), axis=1)[:, :TOP]
    top = np.argsort(-(other @ head.T), axis=1)[:, :TOP]
    overlap = np.mean([len(set(a) & set(b)) / TOP for a, b in zip(ref_top, top)])
    return {"cosine_min": round(float(cos.min()), 5), "cosine_mean": round(float(cos.mean()), 5),
            f"top{TOP}_aligned_overlap": round(float(overlap), 3)}


def encode_paths(preset: Preset, loaded: LoadedModel, texts: list[str]) -> dict:
    """docs/s of each path (best of ROUNDS alternating rounds) and its agreement with float32."""
    threads = torch.get_num_threads()
    paths = {name: Embedder(preset, model) for name, model in _paths(loaded).items()}
    jobs = [(name, embedder, threads) for name, embedder in paths.items()] + [("float32, 1 thread", paths["float32"], 1)]
    best: dict[str, float] = {}
    embeddings: dict[str, np.ndarray] = {}
    for name, embedder, n in jobs:
        embedder.encode(texts[:2])  # warm-up: oneDNN primitives, quantised kernels
    for _ in range(ROUNDS):
        for name, embedder, n in jobs:
            torch.set_num_threads(n)
            start = time.perf_counter()
            embeddings[name] = embedder.encode(texts).embeddings
            best[name] = min(best.get(name, float("inf")), time.perf_counter() - start)
    torch.set_num_threads(threads)
    reference = embeddings["float32"]
    return {"documents": len(texts), "threads": threads, "cpu_has_native_bf16": cpu_has_native_bf16(),
            "paths": {name: {"docs_per_second": round(len(texts) / best[name], 2),
                             "speed_vs_float32": round(best["float32"] / best[name], 2),
                             **_agreement(reference, embeddings[name], loaded.lm_head)}
                      for name, _, _ in jobs}}


MATMUL_OPS = ("aten::mm", "aten::addmm", "aten::bmm")
ATTENTION_OPS = ("aten::_scaled_dot_product_flash_attention_for_cpu", "aten::_scaled_dot_product_attention_math",
                 "aten::_softmax")


def matmul_rate(dtype: torch.dtype, m: int, k: int, n: int, repeats: int = 10) -> float:
    """TFLOPS of one linear layer, [m, k] inputs times an [n, k] weight as the model's layers multiply, in `dtype`
    on this process's threads (best of 3): the rate an encode whose time were all matmuls of that shape would
    reach."""
    a, weight = torch.randn(m, k).to(dtype), torch.randn(n, k).to(dtype)
    torch.nn.functional.linear(a, weight)
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(repeats):
            torch.nn.functional.linear(a, weight)
        best = min(best, (time.perf_counter() - start) / repeats)
    return 2 * m * k * n / best / 1e12


def encode_efficiency(preset: Preset, loaded: LoadedModel, texts: list[str]) -> dict:
    """Where an encode's time goes, per dtype path: the profiler's matmul FLOPs over the wall time of the same
    encode run without the profiler (effective TFLOPS) against the measured matmul rate at the model's MLP shape, and
    the profiled run's time split into matmuls, attention, the other torch ops, and what runs outside torch ops
    (tokenizer, Python, padding)."""
    config = loaded.model.config
    paths = {"float32": loaded}
    if cpu_has_native_bf16():
        paths["bfloat16"] = _bfloat16(loaded)
    tokens = sum(len(ids) for ids in Embedder(preset, loaded).prompts(texts, False).inputs)
    linear = sum(m.weight.numel() for m in loaded.model.base_model.modules() if isinstance(m, torch.nn.Linear))
    out = {}
    for name, model in paths.items():
        embedder = Embedder(preset, model)
        embedder.encode(texts[:2])  # warm-up
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], with_flops=True) as profile:
            start = time.perf_counter()
            embedder.encode(texts)
            profiled = time.perf_counter() - start
        wall = float("inf")  # the rate is timed without the profiler's own overhead
        for _ in range(ROUNDS):
            start = time.perf_counter()
            embedder.encode(texts)
            wall = min(wall, time.perf_counter() - start)
        events = profile.key_averages()
        seconds = {"matmul": sum(e.self_cpu_time_total for e in events if e.key in MATMUL_OPS) / 1e6,
                   "attention": sum(e.self_cpu_time_total for e in events if e.key in ATTENTION_OPS) / 1e6}
        seconds["other torch ops"] = sum(e.self_cpu_time_total for e in events) / 1e6 - sum(seconds.values())
        seconds["outside torch ops"] = max(0.0, profiled - sum(seconds.values()))
        flops = sum(e.flops for e in events if e.key in MATMUL_OPS)
        rate = matmul_rate(model.dtype, 2048, config.hidden_size, config.intermediate_size)
        effective = flops / wall / 1e12
        out[name] = {"wall_seconds": round(wall, 2), "docs_per_second": round(len(texts) / wall, 2),
                     "matmul_tflop": round(flops / 1e12, 3), "effective_tflops": round(effective, 3),
                     "matmul_rate_tflops": round(rate, 3), "share_of_matmul_rate": round(effective / rate, 3),
                     "profiled_seconds": {k: round(v, 2) for k, v in seconds.items()},
                     "share_of_wall": {k: round(v / profiled, 3) for k, v in seconds.items()}}
    return {"documents": len(texts), "threads": torch.get_num_threads(), "tokens": tokens, "linear_parameters": linear,
            "paths": out}


def _busy_neighbour() -> subprocess.Popen:
    """Another process that keeps one core busy (a Python spin loop), as a second job on a shared machine would; it
    stops by itself after 10 minutes if it is never killed."""
    return subprocess.Popen([sys.executable, "-c", "import time\nend = time.time() + 600\nwhile time.time() < end: pass"])


def train_step_paths(preset: Preset, loaded: LoadedModel, dataset_name: str, batch_size: int = 8) -> dict:
    """Seconds per training step (InfoNCE, forward + backward + AdamW) in float32 and in bfloat16 autocast, each
    alone and beside a busy process (one core taken): the ratio says how a shared machine slows training."""
    from plumbing.datasets import split_dev
    from plumbing.settings import DataSettings
    from steps.train import Trainer, TrainSettings, batch_at, training_pairs

    train_split = DataSettings(dataset_name, "train").load()
    seconds: dict[str, float] = {}
    for precision in ("float32", "bfloat16"):
        settings = TrainSettings(base=preset.name, pooling=preset.pooling, data=("supervised", "corpus"),
                                 batch_size=batch_size, precision=precision)
        pairs = training_pairs(train_split, settings.data, split_dev(train_split, settings.dev_queries, settings.seed)[0])
        trainer = Trainer(preset, replace(loaded, model=copy.deepcopy(loaded.model)), settings)
        name = "float32" if precision == "float32" else "bfloat16 autocast"
        trainer.step(batch_at(0, pairs, batch_size, settings.seed), 0)  # warm-up
        for busy in (False, True):
            neighbour = _busy_neighbour() if busy else None
            try:
                for step in range(1, 1 + ROUNDS):
                    start = time.perf_counter()
                    trainer.step(batch_at(step, pairs, batch_size, settings.seed), step)
                    key = f"{name}, beside a busy process" if busy else name
                    seconds[key] = min(seconds.get(key, float("inf")), time.perf_counter() - start)
            finally:
                if neighbour:
                    neighbour.kill()
                    neighbour.wait()
        del trainer
    return {"batch": batch_size, "threads": torch.get_num_threads(),
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "(OpenMP default)"),
            "seconds_per_step": {k: round(v, 2) for k, v in seconds.items()},
            "speed_vs_float32": {k: round(seconds["float32"] / v, 2) for k, v in seconds.items()},
            "busy_slowdown": {k: round(seconds[f"{k}, beside a busy process"] / seconds[k], 2)
                              for k in ("float32", "bfloat16 autocast")}}


def report_lines(result: dict) -> list[str]:
    encode = result["encode"]
    lines = ["## CPU paths (the same documents, ratios to float32 in the same process)", "",
             f"{encode['documents']} documents, {encode['threads']} threads, CPU bf16 in hardware: "
             f"{encode['cpu_has_native_bf16']}", "",
             f"| path | docs/s | speed vs float32 | cosine to float32 (min / mean) | top-{TOP} aligned overlap |",
             "|---|---|---|---|---|"]
    for name, p in encode["paths"].items():
        lines.append(f"| {name} | {p['docs_per_second']} | {p['speed_vs_float32']}x | {p['cosine_min']} / "
                     f"{p['cosine_mean']} | {p[f'top{TOP}_aligned_overlap']} |")
    efficiency = result.get("efficiency")
    if efficiency:
        lines += ["", f"Where an encode's time goes ({efficiency['documents']} documents, {efficiency['threads']} threads; "
                  "effective TFLOPS = the profiler's matmul FLOPs / the unprofiled wall time; matmul rate measured at "
                  "the model's MLP shape in the same run; the time split is the profiled run's):", "",
                  "| dtype | docs/s | effective TFLOPS | matmul rate | share of the rate | matmuls | attention | "
                  "other torch ops | outside torch ops |", "|---|---|---|---|---|---|---|---|---|"]
        for name, p in efficiency["paths"].items():
            shares = p["share_of_wall"]
            lines.append(f"| {name} | {p['docs_per_second']} | {p['effective_tflops']} | {p['matmul_rate_tflops']} | "
                         f"{p['share_of_matmul_rate']} | {shares['matmul']:.0%} | {shares['attention']:.0%} | "
                         f"{shares['other torch ops']:.0%} | {shares['outside torch ops']:.0%} |")
    step = result.get("train_step")
    if step:
        lines += ["", f"Training step (batch {step['batch']}, {step['threads']} threads, OMP_WAIT_POLICY="
                  f"{step['omp_wait_policy']}): " + ", ".join(
                      f"{k} {v} s ({step['speed_vs_float32'][k]}x float32)" for k, v in step["seconds_per_step"].items()),
                  "", "Slowdown beside one busy process (step time busy / alone): " + ", ".join(
                      f"{k} {v}x" for k, v in step["busy_slowdown"].items())]
    return lines + [""]
