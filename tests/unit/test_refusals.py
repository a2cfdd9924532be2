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
    from steps.train import TrainSettings, check_numbers

    with pytest.raises(InputError, match=fragment):
        check_numbers(TrainSettings("smollm2", "prompteol", ("supervised",), **overrides))


@pytest.mark.parametrize("target, given, fragment", [
    ("index", {"k": "0", "source": "aligned"}, "k=0: K must be a positive number"),
    ("index", {"vocab": "all"}, "vocab=all: not used by source=hybrid"),
    ("eval", {"also": "nope"}, "unknown model 'nope'"),
    ("eval", {"also": "smollm2,nope"}, "unknown model 'nope'"),
])
def test_a_bad_variant_is_refused_before_the_first_stage(target, given, fragment):
    from plumbing.params import commands

    with pytest.raises(InputError, match=fragment):
        commands(target, given)


def test_a_path_that_is_no_model_is_refused_before_it_loads(tmp_path):
    """A folder without a config, a text file named .gguf, a truncated GGUF header: one line each, no load."""
    from encoders.presets import resolve_preset

    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "weights.bin").write_bytes(b"\0" * 16)
    (tmp_path / "fake.gguf").write_text("not a model")
    (tmp_path / "short.gguf").write_bytes(b"GG")
    for path, fragment in (("folder", "is a folder without config.json"), ("fake.gguf", "is not a GGUF file"),
                           ("short.gguf", "is not a GGUF file")):
        with pytest.raises(InputError, match=fragment):
            resolve_preset(str(tmp_path / path))


def test_a_lock_held_for_nothing_leaves_no_folder(tmp_path):
    """A stage refused or failed inside its lock (a refused K, a model that does not load) leaves neither the
    folder nor the parents it created; a folder that holds work keeps it."""
    from plumbing.artifacts import folder_lock

    target = tmp_path / "indexes" / "scifact" / "model" / "variant"
    with pytest.raises(InputError):
        with folder_lock(target):
            raise InputError("refused")
    assert not (tmp_path / "indexes").exists()
    with folder_lock(target):
        (target / "manifest.json").write_text("{}")
    assert sorted(p.name for p in target.iterdir()) == [".lock", "manifest.json"]


def test_ctrl_c_is_one_line_and_status_130(capsys):
    from plumbing.cli import cli_main

    def interrupted(argv):
        raise KeyboardInterrupt

    with pytest.raises(SystemExit) as stopped:
        cli_main(interrupted)
    assert stopped.value.code == 130
    err = capsys.readouterr().err
    assert err.startswith("interrupted: what was complete is kept") and "Traceback" not in err and err.count("\n") == 1


def test_parameters_from_the_environment_are_named_not_ignored():
    from plumbing.params import environment_parameters

    assert environment_parameters({"limit": "5", "PATH": "/bin", "BEIR_DIR": "/x"}, {}) == ["limit=5"]
    assert environment_parameters({"limit": "5"}, {"limit": "7"}) == []


@pytest.mark.parametrize("sizes", ["abc", "-5", "1e6"])
def test_scale_sizes_must_be_counts(sizes):
    from plumbing.params import commands

    with pytest.raises(InputError, match=f"sizes='{sizes}' is not valid: document counts"):
        commands("scale", {"sizes": sizes})
