"""Training: contrastive fine-tuning of a decoder embedder (dense or joint objective), resumable, exported as a model folder.

The functions behind `python -m pipeline.train` (whose docstring says what the stage does), kept on their own floor
so that other stages, studies and the Python API call them without one stage importing another.
"""
from __future__ import annotations

import copy
import shutil
import time
import zlib
from dataclasses import asdict, dataclass, fields, replace
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from common import layout
from common.errors import InputError
from common.threads import claim_cores
from encoders.embedder import Embedder
from encoders.models import LoadedModel, load_model
from encoders.presets import Preset
from plumbing.artifacts import folder_lock, manifest, write_bytes_with, write_json
from plumbing.datasets import Dataset, split_dev
from plumbing.model_card import write_model_card
from plumbing.settings import DataSettings, ModelSettings

DATA_SOURCES = ("supervised", "corpus")
PRECISIONS = ("auto", "float32", "bfloat16")
OBJECTIVES = ("dense", "joint")
DEFAULT_STEPS = 120
ADAPTED_LABEL = "adapted on the target corpus"


@dataclass(frozen=True)
class Pair:
    """One positive pair: a query-side text and the document-side text it should retrieve."""

    query: str
    doc: str
    doc_id: str
    negatives: tuple[tuple[str, str], ...] = ()  # (doc id, text): BM25 hard negatives of the query, when asked for


@dataclass(frozen=True)
class TrainSettings:
    """Everything that decides the trained weights; a resumed run must match it (except `steps`)."""

    base: str
    pooling: str
    data: tuple[str, ...]
    batch_size: int = 16
    lr: float = 2e-5
    temperature: float = 0.05
    query_max_length: int = 48
    doc_max_length: int = 128
    warmup: int = 10
    seed: int = 13
    dev_queries: int = 60
    grad_checkpointing: bool = False
    objective: str = "dense"  # or "joint": + the aligned-token loss of the index (encoders/joint.py)
    sparse_weight: float = 1.0
    sparse_temperature: float = 1.0
    sparse_target: str = "hybrid"
    flops_weight: float = 0.0
    hard_negatives: int = 0  # per supervised pair: documents BM25 ranks high for its query that are not relevant
    precision: str = "auto"  # auto: bfloat16 autocast where bf16 is the fast path (CUDA, CPU with bf16 in hardware)

    @classmethod
    def for_model(cls, model: ModelSettings, **overrides) -> "TrainSettings":
        """`make train`'s settings for `model` (its preset's pooling, both pair sources), with overrides."""
        return cls(base=model.preset.name, pooling=model.preset.pooling, data=DATA_SOURCES, **overrides)

    def as_manifest(self) -> dict:
        """The settings as the manifest stores them (JSON: tuples become lists), to compare with a stored model."""
        return {**asdict(self), "data": list(self.data)}

    def differences(self, stored: dict) -> list[str]:
        """Settings that differ from a stored model's; a setting added since it was trained counts at its default."""
        defaults = {f.name: f.default for f in fields(self)}
        stored = {k: list(v) if isinstance(v, tuple) else v for k, v in stored.items()}
        return sorted(k for k, v in self.as_manifest().items() if stored.get(k, defaults[k]) != v)


def check_numbers(settings: TrainSettings) -> None:
    """Refuse, before any model loads, the numbers that would train to NaN or reward the wrong thing."""
    positive = {"lr": settings.lr, "temperature": settings.temperature, "sparse_temperature": settings.sparse_temperature}
    for name, value in positive.items():
        if not value > 0 or value == float("inf"):
            raise InputError(f"{name}={value}: must be a finite number above 0")
    for name, value in {"flops_weight": settings.flops_weight, "sparse_weight": settings.sparse_weight}.items():
        if not 0 <= value < float("inf"):
            raise InputError(f"{name}={value}: must be a finite number >= 0 (a negative weight rewards the term)")
    if settings.objective == "dense":
        defaults = TrainSettings("", "", ())
        unused = [f"{name}={getattr(settings, name)}" for name in ("sparse_weight", "sparse_temperature", "sparse_target",
                                                                   "flops_weight")
                  if getattr(settings, name) != getattr(defaults, name)]
        if unused:
            raise InputError(f"{', '.join(unused)}: not used by objective=dense; add objective=joint or drop them")


def training_pairs(train: Dataset, sources: tuple[str, ...], query_ids: list[str],
                   negatives: dict[str, list[str]] | None = None) -> dict[str, list[Pair]]:
    """Positive pairs per source: supervised (train claims -> cited docs, with their query's hard negatives when
    `negatives` names them) and/or corpus (title -> abstract)."""
    pairs: dict[str, list[Pair]] = {}
    negatives = negatives or {}
    if "supervised" in sources:
        pairs["supervised"] = [Pair(train.queries[q], train.corpus[d].contents, d,
                                    tuple((n, train.corpus[n].contents) for n in negatives.get(q, ())))
                               for q in query_ids for d, rel in sorted(train.qrels[q].items()) if rel > 0]
    if "corpus" in sources:
        pairs["corpus"] = [Pair(doc.title, doc.text, doc_id) for doc_id, doc in train.corpus.items()
                           if doc.title.strip() and doc.text.strip()]
    for source, found in pairs.items():
        if not found:
            raise InputError(f"data={source}: dataset {train.name} gives no training pairs of that kind; choose "
                             f"another --data source ({', '.join(DATA_SOURCES)})")
    return pairs


HARD_NEGATIVE_POOL = 30  # a query's hard negatives are drawn from its top-30 BM25 documents that are not relevant


def bm25_negatives(train: Dataset, data: DataSettings, query_ids: list[str], per_query: int, seed: int
                   ) -> dict[str, list[str]]:
    """Per query, `per_query` documents drawn (seeded by the query id) from the top of its BM25 ranking on the train
    split, judged ones excluded: the documents a lexical ranker confuses with the answer (BM25 run: runs/<d>/train/)."""
    from plumbing.runs import read_trec
    from plumbing.settings import SearchSettings
    from steps.needs import Needs
    from steps.search import run_bm25

    bm25_data = replace(data, split="train", limit=None)
    run = read_trec(run_bm25(train, bm25_data, SearchSettings(), Needs(train, bm25_data).bm25()))
    out = {}
    for query in query_ids:
        ranked = [d for d, _ in sorted(run.get(query, {}).items(), key=lambda x: (-x[1], x[0]))
                  if train.qrels.get(query, {}).get(d, 0) <= 0][:HARD_NEGATIVE_POOL]
        rng = np.random.default_rng([seed, zlib.crc32(query.encode())])
        out[query] = [ranked[i] for i in sorted(rng.choice(len(ranked), size=min(per_query, len(ranked)), replace=False))]
    return out


@lru_cache(maxsize=64)
def _permutation(seed: int, source: int, epoch: int, n: int) -> np.ndarray:
    return np.random.default_rng([seed, source, epoch]).permutation(n)


def batch_at(step: int, pairs: dict[str, list[Pair]], batch_size: int, seed: int) -> list[Pair]:
    """The batch of step `step`: an equal share of each source, walking seeded per-epoch permutations."""
    batch = []
    names = sorted(pairs)
    for number, name in enumerate(names):
        share = batch_size // len(names) + (1 if number < batch_size % len(names) else 0)
        items = pairs[name]
        for position in range(step * share, (step + 1) * share):
            epoch, offset = divmod(position, len(items))
            batch.append(items[_permutation(seed, number, epoch, len(items))[offset]])
    return batch


def info_nce(queries: torch.Tensor, docs: torch.Tensor, doc_ids: list[str], temperature: float,
             column_ids: list[str] | None = None) -> torch.Tensor:
    """InfoNCE of query i against doc i, the other docs of the batch (and any hard negatives after them) as negatives."""
    return in_batch_cross_entropy(F.normalize(queries, dim=-1) @ F.normalize(docs, dim=-1).T / temperature, doc_ids,
                                  column_ids)


def in_batch_cross_entropy(logits: torch.Tensor, doc_ids: list[str], column_ids: list[str] | None = None) -> torch.Tensor:
    """Cross-entropy of row i towards column i (row i's positive, doc_ids[i]); the columns are the batch's positives
    then any hard negatives (`column_ids`); other copies of row i's positive are masked, not negatives."""
    columns = column_ids or doc_ids
    same = torch.tensor([[a == b for b in columns] for a in doc_ids], device=logits.device)
    diagonal = torch.zeros_like(same)
    diagonal[:, :len(doc_ids)] = torch.eye(len(doc_ids), dtype=torch.bool, device=logits.device)
    logits = logits.masked_fill(same & ~diagonal, float("-inf"))
    return F.cross_entropy(logits, torch.arange(len(doc_ids), device=logits.device))


def autocast_dtype(precision: str, device: str) -> torch.dtype | None:
    """The autocast dtype of a training step: bfloat16 where it is the fast path (CUDA, or a CPU that multiplies bf16
    in hardware: a step 1.5x faster here, dev curve within noise of float32), None (plain float32) otherwise or when
    float32 is asked for. Weights and AdamW states stay float32 either way; only the matmuls run in bf16."""
    from encoders.models import cpu_has_native_bf16

    if precision == "float32":
        return None
    if precision == "bfloat16" or torch.device(device).type == "cuda" or cpu_has_native_bf16():
        return torch.bfloat16
    return None


class Trainer:
    """A private copy of the base model, its frozen parts, the optimizer, and one step of InfoNCE."""

    def __init__(self, preset: Preset, loaded: LoadedModel, settings: TrainSettings,
                 corpus: list[str] | None = None) -> None:
        if settings.objective not in OBJECTIVES:
            raise InputError(f"objective={settings.objective}: choose {' or '.join(OBJECTIVES)}")
        if settings.objective == "joint" and not corpus:
            raise InputError("objective=joint needs the corpus (its df and lengths weight the aligned-token loss)")
        if settings.precision not in PRECISIONS:
            raise InputError(f"precision={settings.precision}: choose {', '.join(PRECISIONS)}")
        self.settings = settings
        self.autocast = autocast_dtype(settings.precision, loaded.device)
        model = copy.deepcopy(loaded.model)  # load_model's copy is shared (lru_cache) and must stay the backbone
        model.train()
        frozen = {id(model.get_input_embeddings().weight), id(model.get_output_embeddings().weight)}
        norm = getattr(model.base_model, "norm", None) or getattr(model.base_model, "final_layernorm", None)
        if norm is not None:
            frozen |= {id(p) for p in norm.parameters()}
        for parameter in model.parameters():
            parameter.requires_grad = id(parameter) not in frozen
        if settings.grad_checkpointing:
            model.gradient_checkpointing_enable()
        self.model = model
        train_preset = replace(preset, query_max_length=settings.query_max_length, max_length=settings.doc_max_length)
        self.embedder = Embedder(train_preset, replace(loaded, model=model))
        self.trainable = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(self.trainable, lr=settings.lr)
        self.inputs: dict[tuple[bool, str], tuple[list[int], int, list[int]]] = {}
        self.sparse = None
        if settings.objective == "joint" and settings.sparse_target == "expansion":
            from encoders.joint import ExpansionTarget

            self.sparse = ExpansionTarget(self.embedder.tokenizer, list(corpus))
        elif settings.objective == "joint":
            from encoders.joint import SparseTarget

            own = self.embedder.prompts(list(corpus), is_query=False).own
            self.sparse = SparseTarget(self.embedder.tokenizer, own, settings.sparse_target)
        self.last_parts: dict[str, float] = {}

    def trainable_state(self) -> dict[str, torch.Tensor]:
        return {name: p.detach().clone() for name, p in self.model.named_parameters() if p.requires_grad}

    def _embed(self, texts: list[str], is_query: bool) -> tuple[torch.Tensor, list[list[int]]]:
        """Pooled embeddings with gradients, and each text's own token ids; each prompt is tokenized once."""
        missing = [t for t in dict.fromkeys(texts) if (is_query, t) not in self.inputs]
        if missing:
            prompts = self.embedder.prompts(missing, is_query)
            self.inputs.update({(is_query, t): (ids, first, own)
                                for t, ids, first, own in zip(missing, prompts.inputs, prompts.starts, prompts.own)})
        ids, starts, own = zip(*(self.inputs[(is_query, t)] for t in texts))
        return self.embedder.pool(list(ids), list(starts)), list(own)

    def _sparse_loss(self, queries: list[tuple[str, list[int]]], docs: torch.Tensor, doc_texts: list[tuple[str, list[int]]],
                     doc_ids: list[str], column_ids: list[str]) -> torch.Tensor:
        """The index's InfoNCE (encoders/joint.py: scores as the index gives them), plus FLOPS when its weight is set."""
        scores, flops = self.sparse.batch_scores(queries, doc_texts, docs, self.embedder.loaded.lm_head)
        loss = in_batch_cross_entropy(scores / self.settings.sparse_temperature, doc_ids, column_ids)
        self.last_parts["sparse"] = float(loss.detach())
        if self.settings.flops_weight:
            self.last_parts["flops"] = float(flops.detach())
            loss = loss + self.settings.flops_weight * flops
        return loss

    def step(self, batch: list[Pair], step: int) -> float:
        """One optimizer step on one batch; returns the loss before the update."""
        for group in self.optimizer.param_groups:
            group["lr"] = self.settings.lr * min(1.0, (step + 1) / max(1, self.settings.warmup))
        negatives = [n for p in batch for n in p.negatives]
        query_texts = [p.query for p in batch]
        doc_texts = [p.doc for p in batch] + [text for _, text in negatives]
        device_type = torch.device(self.embedder.loaded.device).type
        with torch.autocast(device_type, dtype=self.autocast or torch.bfloat16, enabled=self.autocast is not None):
            queries, query_own = self._embed(query_texts, True)
            docs, doc_own = self._embed(doc_texts, False)
            doc_ids = [p.doc_id for p in batch]
            column_ids = doc_ids + [doc_id for doc_id, _ in negatives]
            loss = info_nce(queries.float(), docs.float(), doc_ids, self.settings.temperature, column_ids)
            self.last_parts = {"dense": float(loss.detach())}
            if self.sparse is not None:  # computed even at weight 0: the dense path must not notice it
                with torch.autocast(device_type, enabled=False):  # the index's weights in float32, as projected
                    loss = loss + self.settings.sparse_weight * self._sparse_loss(
                        list(zip(query_texts, query_own)), docs.float(), list(zip(doc_texts, doc_own)), doc_ids,
                        column_ids)
        if not torch.isfinite(loss):
            raise InputError(f"step {step}: the loss is {float(loss)} (not finite); nothing of this step is kept. "
                             f"Lower lr or raise sparse_temperature, then resume from the last checkpoint")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.trainable, 1.0)
        self.optimizer.step()
        return float(loss.detach())

    def save_checkpoint(self, path: Path, state: dict) -> None:
        payload = {**state, "trainable": self.trainable_state(), "optimizer": self.optimizer.state_dict()}
        write_bytes_with(path, lambda tmp: torch.save(payload, tmp))

    def load_checkpoint(self, path: Path) -> dict:
        payload = torch.load(path, map_location="cpu", weights_only=False)
        params = dict(self.model.named_parameters())
        with torch.no_grad():
            for name, value in payload.pop("trainable").items():
                params[name].copy_(value)
        self.optimizer.load_state_dict(payload.pop("optimizer"))
        return payload


@dataclass(frozen=True)
class TrainRun:
    """How far and where a training run goes; unlike TrainSettings these may change between resumes."""

    steps: int = DEFAULT_STEPS
    name: str | None = None
    save_every: int = 20
    eval_every: int = 40
    dev_docs: int = 300


def train(data: DataSettings, model: ModelSettings, settings: TrainSettings, run: TrainRun) -> Path:
    """Train (or resume) `models/<name>/` to `run.steps` steps and export the model folder."""
    from steps.train_curve import DevSet, dev_ndcg, plot_training

    preset = model.preset
    if preset.kind != "decoder":
        raise InputError(f"model={model.model}: only decoder embedders are trained here (SPLADE is trained elsewhere)")
    unknown = [s for s in settings.data if s not in DATA_SOURCES]
    if unknown or not settings.data:
        raise InputError(f"data={','.join(settings.data)}: choose one or more of {', '.join(DATA_SOURCES)}, comma-separated")
    check_numbers(settings)
    if run.steps <= 0 or settings.batch_size < 2:
        raise InputError(f"steps={run.steps} batch={settings.batch_size}: need steps >= 1 and batch >= 2 (in-batch negatives)")
    name = run.name or f"{preset.name}-ft"
    folder = layout.trained_model_dir(name)
    with folder_lock(folder):
        torch.manual_seed(settings.seed)
        claim_cores()
        train_split = replace(data, split="train", limit=None).load()  # all train queries, never test
        trained_ids, dev_ids = split_dev(train_split, settings.dev_queries, settings.seed)
        negatives = (bm25_negatives(train_split, data, trained_ids, settings.hard_negatives, settings.seed)
                     if settings.hard_negatives and "supervised" in settings.data else None)
        pairs = training_pairs(train_split, settings.data, trained_ids, negatives)
        loaded = load_model(preset, model.device, model.dtype)
        trainer = Trainer(preset, loaded, settings, [d.contents for d in train_split.corpus.values()])
        checkpoint = folder / "checkpoint.pt"
        state = {"step": 0, "losses": [], "loss_parts": [], "curve": [], "seconds": 0.0, "settings": asdict(settings)}
        if checkpoint.exists():
            state = {"loss_parts": [], **trainer.load_checkpoint(checkpoint)}
            changed = settings.differences(state["settings"])
            if changed:
                raise InputError(f"{checkpoint} was trained with other settings ({', '.join(changed)} differ); "
                                 f"delete {folder} or pass --name for a new model")
            print(f"resuming {name} at step {state['step']} of {run.steps}")
        dev = DevSet.build(train_split, dev_ids, run.dev_docs, settings.seed) if run.eval_every and dev_ids else None
        if dev and state["step"] == 0 and not state["curve"]:
            state["curve"].append({"step": 0, **dev_ndcg(trainer, dev)})
        started = time.time() - state["seconds"]
        with tqdm(total=run.steps, initial=state["step"], desc=f"train {name}", unit="step") as bar:
            while state["step"] < run.steps:
                step = state["step"]
                loss = trainer.step(batch_at(step, pairs, settings.batch_size, settings.seed), step)
                state["losses"].append(loss)
                state["loss_parts"].append(trainer.last_parts)
                state["step"] = step + 1
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.3f}", avg10=f"{np.mean(state['losses'][-10:]):.3f}")
                done = state["step"] == run.steps
                if dev and (state["step"] % run.eval_every == 0 or done):
                    state["curve"].append({"step": state["step"], **dev_ndcg(trainer, dev)})
                    bar.write(f"step {state['step']}: dev {state['curve'][-1]}")
                if state["step"] % run.save_every == 0 or done:
                    state["seconds"] = time.time() - started
                    trainer.save_checkpoint(checkpoint, state)
        export(trainer, preset, folder, name, settings, state, pairs, len(dev_ids), data.name)
        if state["losses"]:
            plot_training(state, folder / "training.png", name)
    print(f"trained model: {folder / 'model'} (use model={name}); card: {write_model_card(folder)}")
    return folder


def export(trainer: Trainer, preset: Preset, folder: Path, name: str, settings: TrainSettings, state: dict,
           pairs: dict[str, list[Pair]], dev_queries: int, dataset: str) -> None:
    """The Hugging Face folder (+ the preset that reproduces its pooling and prompts) and the manifest."""
    target = folder / "model"
    tmp = folder / "model.tmp"
    trainer.model.eval()
    trainer.model.save_pretrained(str(tmp))
    trainer.embedder.tokenizer.save_pretrained(str(tmp))
    labels = [f"fine-tuned from {preset.name}"] + (["on the train split"] if "supervised" in settings.data else []) + \
        ([ADAPTED_LABEL] if "corpus" in settings.data else [])
    trained_preset = replace(preset, name=name, source=str(target),
                             note=f"{', '.join(labels)} ({dataset}; {state['step']} steps)")
    write_json(tmp / "keytokens-preset.json", trained_preset.describe())
    if target.exists():
        shutil.rmtree(target)
    tmp.replace(target)
    write_json(folder / "manifest.json", manifest(
        "train", name=name, base_model=preset.name, base_source=preset.source, dataset=dataset,
        data=list(settings.data), labels=labels, settings=asdict(settings), steps=state["step"],
        pairs={source: len(found) for source, found in pairs.items()}, dev_queries_held_out=dev_queries,
        losses=[round(x, 5) for x in state["losses"]], dev_curve=state["curve"],
        loss_parts={part: [round(p.get(part, float("nan")), 5) for p in state["loss_parts"]]
                    for part in dict.fromkeys(k for p in state["loss_parts"] for k in p)},
        seconds=round(state["seconds"], 1), frozen="token embeddings (tied LM head) and final norm",
        autocast=str(trainer.autocast).removeprefix("torch.") if trainer.autocast else "off (float32)",
        threads=torch.get_num_threads()))
