"""Typed settings, variant names, validation and paths: what every stage's folders and run names are built from."""
from __future__ import annotations

import pytest

from common import layout
from common.errors import InputError
from encoders.pc1 import PC1Mode
from encoders.presets import PRESETS
from plumbing.runs import sparse_run_name
from plumbing.settings import DataSettings, ModelSettings, QuerySettings, Variant

SMOLLM2 = PRESETS["smollm2"]


def test_default_variant_and_its_folder_name():
    assert Variant.build(SMOLLM2).as_dict() == {"source": "hybrid", "k": 1024, "weighting": "bm25tf", "normalize": "on",
                                                 "vocab": "text", "pc1": "remove", "terms": "words"}
    assert Variant.build(SMOLLM2).name == "hybrid-bm25tf-words-pc1remove"
    assert Variant.build(SMOLLM2, terms="tokens").name == "hybrid-bm25tf-norm-pc1remove"
    assert Variant.build(SMOLLM2, source="own").name == "own-bm25tf-words"
    assert Variant.build(SMOLLM2, source="aligned").name == "k1024-log-words-text-pc1remove"
    assert Variant.build(SMOLLM2, source="aligned", terms="tokens").name == "k1024-log-norm-text-pc1remove"
    assert Variant.build(SMOLLM2, source="aligned", pc1="-0.5", normalize="off", terms="tokens").name == \
        "k1024-log-raw-text-pc1m0.5"
    assert Variant.build(SMOLLM2, source="own", weighting="uniform", terms="tokens").name == "own-uniform-norm"
    assert Variant.build(PRESETS["splade-tiny"]).name == "splade-raw"
    # a manifest from before terms existed describes a token variant, not today's default
    assert Variant.from_dict({"source": "hybrid", "weighting": "bm25tf"}).terms == "tokens"
    with pytest.raises(InputError, match="normalize=off is for terms=tokens"):
        Variant.build(SMOLLM2, source="aligned", normalize="off")


def test_experiments_ignore_the_command_line_levers():
    """With levers on the command line, the default row takes them and every other row keeps the variant its
    experiment fixes: the paper's recipe stays K=128 logit weights, raw tokens, all vocabulary, PC1 kept (Nie et
    al.'s settings, written out here), the controls stay controls."""
    from plumbing.settings import ModelSettings
    from steps.evaluate import leaderboard_variants

    given = {"source": "aligned", "k": 32, "weighting": "softmax", "vocab": "text", "pc1": "remove", "terms": "tokens"}
    rows = [variant for variant, _ in leaderboard_variants(ModelSettings("smollm2"), given)]
    assert (rows[0].source, rows[0].k, rows[0].weighting) == ("aligned", 32, "softmax")  # the default row: the levers
    paper = next(v for v in rows if v.name == "k128-logit-raw-all-pc1off")
    assert (paper.k, paper.weighting, paper.normalize, paper.vocab, str(paper.pc1)) == (128, "logit", "off", "all", "off")
    assert sum(v.source == "own" for v in rows) >= 2 and all(v.k != 32 for v in rows[1:] if v.source == "aligned")


@pytest.mark.parametrize("levers, fragment", [
    ({"k": 0}, "k=0: K must be a positive number"),
    ({"source": "aligned", "weighting": "uniform"}, "weighting=uniform is not for source=aligned"),
    ({"source": "nope"}, "source=nope"),
    ({"pc1": "sideways"}, "pc1=sideways"),
])
def test_bad_levers_are_refused(levers, fragment):
    with pytest.raises(InputError, match=fragment.replace("(", r"\(")):
        Variant.build(SMOLLM2, **levers)


def test_pc1_mode_parsing():
    assert PC1Mode.parse("remove") == PC1Mode("remove")
    assert PC1Mode.parse("-1.5") == PC1Mode("shift", -1.5)
    with pytest.raises(InputError, match="pc1=up"):
        PC1Mode.parse("up")


def test_run_names_and_paths(monkeypatch, tmp_path):
    assert sparse_run_name("smollm2", "hybrid-bm25tf-norm-pc1remove", QuerySettings("aligned", m=16).mode, "idf") == \
        "smollm2.hybrid-bm25tf-norm-pc1remove.aligned16-idf"
    monkeypatch.setenv("KEYTOKENS_RUNS", str(tmp_path / "r"))
    monkeypatch.setenv("KEYTOKENS_INDEXES", str(tmp_path / "i"))
    data = DataSettings("scifact", limit=50)
    assert data.key == "scifact-limit50" and data.run_dir == tmp_path / "r" / "scifact-limit50"
    assert data.with_split("train").run_dir == tmp_path / "r" / "scifact-limit50-train" / "train"  # the train slice differs
    assert layout.variant_dir(data.key, "smollm2", "v") == tmp_path / "i" / "scifact-limit50" / "smollm2" / "v"


def test_non_float32_artifacts_are_named_apart():
    from encoders.models import untagged

    assert ModelSettings("smollm2", device="cpu").name == "smollm2"
    assert ModelSettings("smollm2", device="cpu", dtype="bfloat16").name == "smollm2-bf16"
    assert ModelSettings("smollm2", device="cpu", dtype="float16").name == "smollm2-fp16"
    assert untagged("smollm2-ft-bf16") == "smollm2-ft" and untagged("smollm2-ft") == "smollm2-ft"
