"""The demo's loop: train the default if absent or stale, encode, distil, evaluate, with every stage's time.

The functions behind `python -m pipeline.demo` (whose docstring says what the stage does), kept on their own floor
so that other stages, studies and the Python API call them without one stage importing another.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

from common import layout
from plumbing.artifacts import read_json, write_json
from plumbing.settings import ALIGNED_M, DataSettings, ModelSettings, SearchSettings
from steps.train import DEFAULT_STEPS, TrainRun, TrainSettings

BACKBONE = "smollm2"
TASTE_STEPS = 4  # the --limit taste model: enough steps to exercise the loop in about a minute


@dataclass(frozen=True)
class TrainedDefault:
    """The embedder the demo evaluates, and what had to be done to have it."""

    name: str
    action: str  # "reused", "trained (absent)", "trained (stale: ...)"


def model_state(name: str, settings: TrainSettings, steps: int) -> str:
    """'ready', 'absent', or 'stale: <why>' for the trained model `models/<name>/`."""
    folder = layout.trained_model_dir(name)
    if not (folder / "model" / "keytokens-preset.json").is_file() or not (folder / "manifest.json").is_file():
        return "absent"
    info = read_json(folder / "manifest.json")
    changed = settings.differences(info.get("settings", {}))
    if changed:
        return f"stale: trained with other settings ({', '.join(changed)} differ)"
    if int(info.get("steps", 0)) < steps:
        return f"stale: {info.get('steps', 0)} of {steps} steps"
    return "ready"


def ensure_trained(data: DataSettings, backbone: ModelSettings, settings: TrainSettings, run: TrainRun) -> TrainedDefault:
    """Reuse `models/<run.name>` when it is ready, else train it (resuming, or after moving a stale one aside)."""
    from steps.train import train

    name = run.name or f"{backbone.preset.name}-ft"
    state = model_state(name, settings, run.steps)
    if state == "ready":
        print(f"{name}: reused (models/{name} matches `make train`'s settings and steps)")
        return TrainedDefault(name, "reused")
    if state.startswith("stale: trained with other settings"):
        folder = layout.trained_model_dir(name)
        aside = folder.with_name(f"{name}.stale-{time.strftime('%Y%m%d-%H%M%S')}")
        folder.rename(aside)
        print(f"{name}: {state}; moved to {aside.name}, training a new one")
    else:
        print(f"{name}: {state}; training it")
    train(data, backbone, settings, TrainRun(run.steps, name, run.save_every, run.eval_every, run.dev_docs))
    return TrainedDefault(name, f"trained ({state})")


def demo_dtype(requested: str) -> str:
    """bfloat16 where it is the fast path (CUDA, or a CPU with bf16 in hardware), unless a dtype is asked for."""
    from encoders.models import cpu_has_native_bf16, pick_device

    if requested != "auto":
        return requested
    return "bfloat16" if pick_device("auto") != "cpu" or cpu_has_native_bf16() else "float32"


def default_run(limit: int | None, backbone: ModelSettings) -> tuple[TrainSettings, TrainRun]:
    """`make train`'s run for the full demo; for a --limit taste, the full model if it is there, else a taste model."""
    settings = TrainSettings.for_model(backbone)
    full = TrainRun(DEFAULT_STEPS, f"{backbone.preset.name}-ft")
    if not limit or model_state(full.name, settings, full.steps) == "ready":
        return settings, full
    return settings, TrainRun(TASTE_STEPS, f"{backbone.preset.name}-ft-taste", save_every=TASTE_STEPS, eval_every=0)


def run_demo(data: DataSettings, backbone: ModelSettings, dtype: str, also: tuple[str, ...] = ()) -> dict:
    """Train if needed, encode, evaluate; returns (and writes) the stage times and the key results."""
    from steps.distil import DistilSettings, distil, student_state
    from steps.encode import encode_corpus
    from steps.evaluate import SPLADE_MODEL, evaluate

    stages: dict[str, float] = {}
    started = time.time()
    settings, run = default_run(data.limit, backbone)
    trained = ensure_trained(data, backbone, settings, run)
    stages["train"] = round(time.time() - started, 1)
    model = ModelSettings(trained.name, device=backbone.device, dtype=demo_dtype(dtype), task=data.name)
    dataset = data.load()
    for settings_of in (model, model.other(SPLADE_MODEL)):
        mark = time.time()
        encode_corpus(dataset, data, settings_of)
        stages[f"encode {settings_of.name}"] = round(time.time() - mark, 1)
    if not data.limit:  # the taste slice has no train split of its own to distil on; the full demo does
        mark = time.time()
        state = student_state(data, model, DistilSettings())
        print(f"student of {model.name}: {state}")
        if state != "ready":
            distil(data, model, DistilSettings())
        stages["distil (student from stored embeddings)"] = round(time.time() - mark, 1)
    mark = time.time()
    results, _ = evaluate(data, model, {}, ALIGNED_M, SearchSettings(), also=also)
    stages["eval (indexes, runs, metrics)"] = round(time.time() - mark, 1)
    stages["total"] = round(time.time() - started, 1)
    summary = {"model": model.name, "training": trained.action, "dtype": model.dtype, "stage_seconds": stages,
               "key_figure": results.get("key_figure", [])}
    write_json(data.run_dir / "demo.json", summary)
    print("\nstage times (this run; a reused stage takes seconds):")
    for stage, seconds in stages.items():
        print(f"  {stage:<32} {seconds / 60:6.1f} min")
    return summary
