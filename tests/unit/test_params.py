"""make's parameters: read from MAKEFLAGS as data, refused in one line when unknown, unused or malformed."""
from __future__ import annotations

import pytest

from common.errors import InputError
from plumbing.params import check, command_line_variables, commands


def test_makeflags_are_unescaped_as_make_wrote_them():
    flags = r" -j2 --jobserver-auth=3,4 -- z=$$(shell\ touch\ X) k=a\ b\\c dataset=x;touch\ PWNED\ #"
    assert command_line_variables(flags) == {"z": "$(shell touch X)", "k": "a b\\c", "dataset": "x;touch PWNED #"}
    assert command_line_variables(" -j2") == {}


@pytest.mark.parametrize("target, given, message", [
    ("index", {"K": "512"}, "unknown parameter K; did you mean k?"),
    ("eval", {"modle": "gemma3"}, "unknown parameter modle; did you mean model?"),
    ("encode", {"engine": "ray", "worker": "1"}, "unknown parameter worker; did you mean workers?"),
    ("encode", {"engine": "rya"}, "engine=rya is not an engine of make encode"),
    ("eval", {"engine": "qdrnt"}, "did you mean qdrant?"),
    ("encode", {"k": "5"}, "make encode does not use k"),
    ("test", {"limit": "5"}, "make test does not use limit"),
    ("index", {"dataset": "x;touch PWNED #"}, "is not valid"),
    ("index", {"dataset": "../../escape"}, "is not valid"),
    ("eval", {"k": "3;ls"}, "k='3;ls' is not valid"),
    ("encode", {"device": "gpu"}, "device='gpu' is not valid"),
    ("explain", {}, "make explain needs qid"),
    ("export", {}, "make export needs engine"),
])
def test_refusals_name_the_parameter_and_the_fix(target, given, message):
    with pytest.raises(InputError, match=message.replace("?", r"\?").replace("(", r"\(")):
        check(target, given)


def test_values_reach_stages_as_single_arguments():
    planned = commands("index", {"dataset": "scifact", "k": "64", "data_dir": "/tmp/a b;c", "source": "aligned",
                                 "terms": "words"}, "py")
    assert planned == [["py", "-m", "pipeline.encode", "--dataset", "scifact", "--data-dir", "/tmp/a b;c"],
                       ["py", "-m", "pipeline.index", "--dataset", "scifact", "--data-dir", "/tmp/a b;c", "--k", "64",
                        "--source", "aligned", "--terms", "words"]]
    assert commands("beir", {"limit": "50", "quick": "1"}, "py") == [["py", "-m", "pipeline.beir", "--limit", "50", "--quick"]]
    assert commands("eval", {"engine": "qdrant", "also": "smollm2,splade-tiny"}, "py") == [
        ["py", "-m", "pipeline.evaluate", "--also", "smollm2", "splade-tiny", "--engine", "qdrant"]]
    assert commands("export", {"engine": "elastic"}, "py")[-1] == ["py", "-m", "pipeline.bulk", "--engine", "elastic"]
    assert commands("test", {"BEIR_DIR": "/data"}, "py") == []
