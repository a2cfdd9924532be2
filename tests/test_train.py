"""`make train` on a tiny budget with the real SmolLM2 and real scifact pairs: the loss falls, resume is exact,
the trained model is a preset whose LM head is still the backbone's."""
from __future__ import annotations

import json
from collections import Counter

import pytest
import torch
from safetensors.torch import load_file

from pipeline.train import main as train_main
from plumbing.datasets import split_dev
from steps.train import batch_at, info_nce
from steps.train import training_pairs

TINY = ["--dataset", "scifact", "--batch", "4", "--query-max-length", "16", "--doc-max-length", "32",
        "--eval-every", "0", "--device", "cpu"]


@pytest.fixture(scope="module")
def train_split():
    from plumbing.datasets import load_dataset

    return load_dataset("scifact", "train")


def test_pairs_come_from_trained_train_queries_only(train_split):
    trained, dev = split_dev(train_split, 60, 13)
    assert len(dev) == 60 and not set(trained) & set(dev)
    pairs = training_pairs(train_split, ("supervised",), trained)["supervised"]
    trained_texts = {train_split.queries[q] for q in trained}
    assert pairs and {p.query for p in pairs} <= trained_texts
    assert not {p.query for p in pairs} & ({train_split.queries[q] for q in dev} - trained_texts)
    # the test split is never read: its claims reach training only where scifact repeats a train claim verbatim
    from plumbing.datasets import load_dataset

    test_texts = set(load_dataset("scifact", "test").queries.values())
    assert len({p.query for p in pairs} & test_texts) <= 2  # scifact train 871 = test 870, train 1291 = test 1292


def test_batches_are_a_function_of_the_step(train_split):
    pairs = training_pairs(train_split, ("supervised", "corpus"), split_dev(train_split, 60, 13)[0])
    first = batch_at(7, pairs, 16, 13)
    assert first == batch_at(7, pairs, 16, 13) and first != batch_at(8, pairs, 16, 13)
    assert sum(p in pairs["supervised"] for p in first) == 8  # an equal share of each source


def test_info_nce_masks_copies_of_the_positive():
    q = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    d = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    # the same document twice: the second query's "negative" is its own positive and must not count
    assert info_nce(q, d, ["a", "a"], 0.05) < info_nce(q, d, ["a", "b"], 0.05)


def test_hard_negative_columns_count_unless_they_copy_the_positive():
    import math

    from steps.train import in_batch_cross_entropy

    logits = torch.tensor([[2.0, 0.0, 1.0], [0.0, 2.0, 1.0]])  # columns: the two positives, then one hard negative
    loss = in_batch_cross_entropy(logits, ["a", "b"], ["a", "b", "c"])
    expected = -(math.log(math.exp(2) / (math.exp(2) + 1 + math.exp(1))))  # each row: its positive vs two others
    assert float(loss) == pytest.approx(expected, rel=1e-6)
    copy = in_batch_cross_entropy(logits, ["a", "b"], ["a", "b", "a"])  # the "negative" is row 0's own positive
    assert float(copy) < float(loss)


def test_bm25_hard_negatives_are_unjudged_seeded_and_train(train_split):
    from encoders.models import load_model
    from encoders.presets import resolve_preset
    from plumbing.settings import DataSettings
    from steps.train import Trainer, TrainSettings, bm25_negatives

    trained = split_dev(train_split, 60, 13)[0][:12]
    negatives = bm25_negatives(train_split, DataSettings("scifact", "train"), trained, 2, 13)
    assert negatives == bm25_negatives(train_split, DataSettings("scifact", "train"), trained, 2, 13)
    for query, docs in negatives.items():
        assert len(docs) == 2 and all(train_split.qrels[query].get(d, 0) <= 0 for d in docs)
    pairs = training_pairs(train_split, ("supervised",), trained, negatives)["supervised"]
    assert all(len(p.negatives) == 2 and p.doc_id not in dict(p.negatives) for p in pairs)
    preset = resolve_preset("smollm2")
    trainer = Trainer(preset, load_model(preset, "cpu"), TrainSettings(
        base="smollm2", pooling="prompteol", data=("supervised",), lr=1e-4, warmup=1, query_max_length=16,
        doc_max_length=32, hard_negatives=2))
    losses = [trainer.step(pairs[:3], step) for step in range(3)]  # 3 positives + 6 hard negatives per row
    assert losses[-1] < losses[0]


def test_loss_falls_on_a_repeated_batch(train_split):
    from encoders.models import load_model
    from encoders.presets import resolve_preset
    from steps.train import Trainer, TrainSettings

    preset = resolve_preset("smollm2")
    loaded = load_model(preset, "cpu")
    before = loaded.model.model.layers[0].mlp.up_proj.weight.clone()
    trainer = Trainer(preset, loaded, TrainSettings(base="smollm2", pooling="prompteol", data=("corpus",), lr=1e-4,
                                                    warmup=1, query_max_length=16, doc_max_length=32))
    batch = batch_at(0, training_pairs(train_split, ("corpus",), []), 4, 13)
    losses = [trainer.step(batch, step) for step in range(4)]
    assert losses[-1] < losses[0]
    assert torch.equal(loaded.model.model.layers[0].mlp.up_proj.weight, before)  # the shared backbone is untouched
    assert torch.equal(trainer.model.get_output_embeddings().weight, loaded.model.get_output_embeddings().weight)


def test_joint_loss_falls_on_a_repeated_batch(train_split):
    """objective=joint: the aligned-token InfoNCE (index weights from the frozen head) and the total both fall."""
    from encoders.models import load_model
    from encoders.presets import resolve_preset
    from steps.train import Trainer, TrainSettings

    preset = resolve_preset("smollm2")
    settings = TrainSettings(base="smollm2", pooling="prompteol", data=("supervised",), lr=1e-4, warmup=1,
                             query_max_length=16, doc_max_length=32, objective="joint")
    corpus = [d.contents for d in list(train_split.corpus.values())[:400]]
    trainer = Trainer(preset, load_model(preset, "cpu"), settings, corpus)
    batch = batch_at(0, training_pairs(train_split, ("supervised",), split_dev(train_split, 60, 13)[0]), 4, 13)
    totals, sparse = [], []
    for step in range(4):
        totals.append(trainer.step(batch, step))
        sparse.append(trainer.last_parts["sparse"])
    assert set(trainer.last_parts) == {"dense", "sparse"}
    assert totals[-1] < totals[0] and sparse[-1] < sparse[0]
    assert totals[0] > sparse[0]  # the total holds the dense part too


def test_joint_with_sparse_weight_zero_reproduces_the_dense_weights(isolated_outputs):
    models = isolated_outputs / "models"
    train_main(TINY + ["--steps", "2", "--name", "dense-only"])
    train_main(TINY + ["--steps", "2", "--name", "joint-zero", "--objective", "joint", "--sparse-weight", "0"])
    dense = load_file(models / "dense-only" / "model" / "model.safetensors")
    joint = load_file(models / "joint-zero" / "model" / "model.safetensors")
    assert dense.keys() == joint.keys() and all(torch.equal(dense[k], joint[k]) for k in dense)
    info = json.loads((models / "joint-zero" / "manifest.json").read_text())
    assert info["settings"]["objective"] == "joint" and len(info["loss_parts"]["sparse"]) == 2  # computed, weighted 0


def _backbone_dev_dense_ndcg(dev_docs: int) -> float:
    """The dev curve's dense figure recomputed outside training: backbone embeddings at the training lengths."""
    from dataclasses import replace

    from encoders.embedder import Embedder
    from encoders.models import load_model
    from encoders.presets import resolve_preset
    from engines.retrieval import DenseIndex
    from plumbing.datasets import load_dataset
    from plumbing.runs import score
    from steps.train import TrainSettings
    from steps.train_curve import DevSet

    defaults = TrainSettings(base="smollm2", pooling="prompteol", data=("supervised", "corpus"))
    train = load_dataset("scifact", "train")
    _, dev_ids = split_dev(train, defaults.dev_queries, defaults.seed)
    dev = DevSet.build(train, dev_ids, dev_docs, defaults.seed)
    preset = resolve_preset("smollm2")
    embedder = Embedder(replace(preset, query_max_length=16, max_length=32), load_model(preset, "cpu"))
    docs = embedder.encode(dev.docs).embeddings
    queries = embedder.encode(list(dev.queries.values()), is_query=True).embeddings
    return score(dev.qrels, DenseIndex(dev.doc_ids, docs).search(queries, list(dev.queries), k=10))


def test_resume_gives_the_same_weights_and_a_usable_preset(isolated_outputs):
    models = isolated_outputs / "models"
    train_main(TINY + ["--steps", "3", "--name", "straight", "--eval-every", "2", "--dev-docs", "80"])
    train_main(TINY + ["--steps", "1", "--name", "resumed"])
    train_main(TINY + ["--steps", "3", "--name", "resumed"])
    straight = load_file(models / "straight" / "model" / "model.safetensors")
    resumed = load_file(models / "resumed" / "model" / "model.safetensors")
    assert straight.keys() == resumed.keys()
    assert all(torch.allclose(straight[k], resumed[k], atol=1e-6) for k in straight)
    curve = json.loads((models / "straight" / "manifest.json").read_text())["dev_curve"]
    assert [c["step"] for c in curve] == [0, 2, 3]  # the dev measurements did not perturb training (weights equal)
    assert curve[0]["dense_ndcg@10"] == _backbone_dev_dense_ndcg(dev_docs=80)  # step 0 is the backbone itself
    info = json.loads((models / "resumed" / "manifest.json").read_text())
    assert info["steps"] == 3 and len(info["losses"]) == 3
    assert "adapted on the target corpus" in info["labels"]
    assert (models / "resumed" / "training.png").stat().st_size > 10_000

    from encoders.embedder import Embedder
    from encoders.models import load_model
    from encoders.presets import resolve_preset

    preset = resolve_preset("resumed")
    assert preset.pooling == "prompteol" and preset.name == "resumed"
    trained = load_model(preset, "cpu")
    backbone = load_model(resolve_preset("smollm2"), "cpu")
    assert torch.equal(trained.lm_head, backbone.lm_head)  # aligned tokens read through the backbone's head
    embedding = Embedder(preset, trained).encode(["Vitamin D deficiency raises fracture risk."]).embeddings
    assert embedding.shape == (1, backbone.lm_head.shape[1])


def test_settings_change_on_resume_is_refused(isolated_outputs):
    from common.errors import InputError

    train_main(TINY + ["--steps", "1", "--name", "changing"])
    with pytest.raises(InputError, match="other settings"):
        train_main(TINY + ["--steps", "2", "--name", "changing", "--lr", "1e-3"])


def test_expansion_loss_falls_and_the_index_holds_what_training_scored(train_split):
    """sparse_target=expansion (encoders/expansion.py): own words at BM25 tf + the top-K words of the embedding, scored
    against analyzed query words x idf; the loss (with IDF-aware FLOPS) falls on a repeated batch, and the index's
    projection of the same embedding gives the same words the training scored."""
    from encoders.documents import expansion_word_vectors
    from encoders.models import load_model
    from encoders.presets import resolve_preset
    from steps.train import Trainer, TrainSettings

    preset = resolve_preset("smollm2")
    settings = TrainSettings(base="smollm2", pooling="prompteol", data=("supervised",), lr=1e-4, warmup=1,
                             query_max_length=16, doc_max_length=32, objective="joint", sparse_target="expansion",
                             flops_weight=0.1)
    corpus = [d.contents for d in list(train_split.corpus.values())[:400]]
    trainer = Trainer(preset, load_model(preset, "cpu"), settings, corpus)
    batch = batch_at(0, training_pairs(train_split, ("supervised",), split_dev(train_split, 60, 13)[0]), 4, 13)
    sparse = []
    for step in range(4):
        trainer.step(batch, step)
        sparse.append(trainer.last_parts["sparse"])
    assert set(trainer.last_parts) == {"dense", "sparse", "flops"} and sparse[-1] < sparse[0]
    target = trainer.sparse
    embedding = trainer.embedder.encode([batch[0].doc]).embeddings
    ids, weights = target.head.expansion(torch.from_numpy(embedding), trainer.embedder.loaded.lm_head, target.k)
    assert ids.shape == (1, target.k) and bool((weights >= 0).all())
    counts = Counter(target.analyzer.terms(batch[0].doc))
    vectors, _ = expansion_word_vectors([counts], target.head, embedding, trainer.embedder.loaded.lm_head, target.k)
    expanded = {target.head.words[int(i)] for i, w in zip(ids[0], weights[0]) if w > 0}
    assert set(vectors[0]) == set(counts) | expanded  # own words kept, the expansion added, nothing else
    assert len(vectors[0]) <= len(counts) + target.k


def test_model_folder_carries_a_card_and_loads_from_any_folder(isolated_outputs, tmp_path):
    """The trained folder is shareable: its README.md is a Hugging Face model card (read back by huggingface_hub's
    own parser) naming the base model, data and steps, and a copy elsewhere loads by path, student beside it."""
    import shutil

    from huggingface_hub import ModelCard

    from encoders.embedder import Embedder
    from encoders.models import load_model
    from encoders.presets import resolve_preset
    from plumbing.settings import ModelSettings

    train_main(TINY + ["--steps", "1", "--name", "carded"])
    folder = isolated_outputs / "models" / "carded"
    card = ModelCard.load(folder / "README.md")
    assert card.data.base_model == "HuggingFaceTB/SmolLM2-135M-Instruct" and card.data.license == "apache-2.0"
    assert card.data.datasets == ["BeIR/scifact"] and card.data.pipeline_tag == "feature-extraction"
    assert "1 steps" in card.text and "scifact:" in card.text and "## Limits" in card.text
    copy = tmp_path / "shared" / "carded"
    shutil.copytree(folder, copy)
    shutil.rmtree(folder)  # nothing may resolve back to the models root
    for given in (str(copy), str(copy / "model")):
        preset = resolve_preset(given)
        assert preset.name == "carded" and preset.source == str((copy / "model").resolve())
        assert ModelSettings(given).student_dir == copy.resolve() / "student"
    text = ["Vitamin D deficiency raises fracture risk."]
    embedding = Embedder(resolve_preset(str(copy)), load_model(resolve_preset(str(copy)), "cpu")).encode(text).embeddings
    assert embedding.shape == (1, 576) and float(abs(embedding).sum()) > 0
