"""Settings that would do nothing or do harm are refused before any work, in one line naming the setting."""
from __future__ import annotations

import pytest

from common.errors import InputError
from encoders.presets import resolve_preset
from plumbing.settings import Variant


@pytest.mark.parametrize("given, fragment", [
    ({"k": 512}, "k=512: not used by source=hybrid"),
    ({"source": "hybrid", "vocab": "all"}, "vocab=all: not used by source=hybrid"),
    ({"source": "own", "pc1": "remove", "k": 9}, "k=9, pc1=remove: not used by source=own"),
    ({"source": "distilled", "k": 64}, "k=64: not used by source=distilled"),
])
def test_a_lever_the_variant_never_reads_is_refused(given, fragment):
    with pytest.raises(InputError, match=fragment):
        Variant.refuse_unused(resolve_preset("smollm2"), given)


def test_levers_the_variant_reads_pass():
    Variant.refuse_unused(resolve_preset("smollm2"), {"source": "aligned", "k": 128, "vocab": "all", "pc1": "off"})
    Variant.refuse_unused(resolve_preset("smollm2"), {"source": None, "pc1": "auto", "terms": "words"})
    Variant.refuse_unused(resolve_preset("splade-tiny"), {"normalize": "on"})


def test_splade_takes_no_word_terms():
    with pytest.raises(InputError, match="terms=words: not used by model=splade-tiny"):
        Variant.refuse_unused(resolve_preset("splade-tiny"), {"terms": "words"})


@pytest.mark.parametrize("pc1", ["1e999", "nan", "-inf"])
def test_pc1_must_be_finite(pc1):
    with pytest.raises(InputError, match="finite"):
        Variant.build(resolve_preset("smollm2"), pc1=pc1)


@pytest.mark.parametrize("overrides, fragment", [
    ({"objective": "joint", "sparse_temperature": 0.0}, "sparse_temperature=0.0: must be a finite number above 0"),
    ({"objective": "joint", "flops_weight": -1.0}, "flops_weight=-1.0: must be a finite number >= 0"),
    ({"lr": float("inf")}, "lr=inf"),
    ({"flops_weight": 0.01}, "flops_weight=0.01: not used by objective=dense"),
    ({"sparse_target": "expansion"}, "sparse_target=expansion: not used by objective=dense"),
])
def test_training_numbers_that_break_or_do_nothing_are_refused(overrides, fragment):
    from pipeline.train import TrainSettings, check_numbers

    with pytest.raises(InputError, match=fragment):
        check_numbers(TrainSettings("smollm2", "prompteol", ("supervised",), **overrides))


@pytest.mark.parametrize("given, fragment", [
    ({"k": "0", "source": "aligned"}, "k=0: K must be a positive number"),
    ({"vocab": "all"}, "vocab=all: not used by source=hybrid"),
])
def test_a_bad_variant_is_refused_before_the_first_stage(given, fragment):
    from plumbing.params import commands

    with pytest.raises(InputError, match=fragment):
        commands("index", given)


def test_parameters_from_the_environment_are_named_not_ignored():
    from plumbing.params import environment_parameters

    assert environment_parameters({"limit": "5", "PATH": "/bin", "BEIR_DIR": "/x"}, {}) == ["limit=5"]
    assert environment_parameters({"limit": "5"}, {"limit": "7"}) == []


@pytest.mark.parametrize("sizes", ["abc", "-5", "1e6"])
def test_scale_sizes_must_be_counts(sizes):
    from plumbing.params import commands

    with pytest.raises(InputError, match=f"sizes='{sizes}' is not valid: document counts"):
        commands("scale", {"sizes": sizes})
