"""make's parameters, read once and checked once: every `make <target> name=value` goes through here.

Why: make used to paste `$(dataset)` into shell recipes, so a value was read by a shell (`dataset='x;touch F'` ran
`touch`), and a misspelt name (`K=512`, `modle=gemma3`) was silently ignored while the default path ran. Now the
Makefile never expands a parameter: it hands its target to `python -m plumbing.params <target>`, which reads the
command-line variables from MAKEFLAGS (make's own, unexpanded copy of them), refuses an unknown name with the
closest known one and a known name the target does not use, and runs the target's stages as argument lists
(`subprocess`, no shell), stopping at the first failing stage with its exit status. Values are data: they reach
the stages as single arguments, where the typed settings validate them (a dataset name is a name, never a path).
"""
from __future__ import annotations

import difflib
import os
import re
import subprocess
import sys
from dataclasses import dataclass

from common.errors import InputError
from common.layout import DATASET_NAME

# Parameters of the environment rather than of a stage: accepted by every target, passed on as environment.
ENVIRONMENT = ("BEIR_DIR", "IR_DATASETS_HOME", "PYTHON", "verbose")
VERBOSE_ENV = "KEYTOKENS_VERBOSE"  # verbose=1: the JVM's INFO lines too (common/jvm.py)


@dataclass(frozen=True)
class Param:
    """One make parameter: the stage flag it becomes (None: a switch with no value), and a value check."""

    flag: str
    pattern: str | None = None  # a full-match regular expression for the value
    hint: str = ""  # what a valid value looks like, for the one-line refusal
    switch: bool = False  # `quick=1` -> `--quick` (values: 1, yes, true, on; 0/no/false/off leave it out)


INT = (r"[0-9]+", "a whole number")
NUMBER = (r"-?[0-9]*\.?[0-9]+(e-?[0-9]+)?", "a number")
NAME = (r"[A-Za-z0-9_][A-Za-z0-9_.-]*(/[A-Za-z0-9_][A-Za-z0-9_.-]*)*", "letters, digits, '-', '_', '.', '/'")
LIST = (r"[A-Za-z0-9_.,/-]+", "a comma-separated list")

PARAMS: dict[str, Param] = {
    "dataset": Param("--dataset", DATASET_NAME.pattern, "a dataset name: letters, digits, '-', '_' "
                     "and '/' for ir_datasets ids (e.g. scifact, cqadupstack/android)"),
    "split": Param("--split", r"test|train|dev", "test, train or dev"),
    "limit": Param("--limit", *INT),
    "data_dir": Param("--data-dir"),
    "model": Param("--model"),
    "pooling": Param("--pooling", r"last|mean|weighted-mean|prompteol", "last, mean, weighted-mean or prompteol"),
    "device": Param("--device", r"auto|cpu|mps|cuda(:[0-9]+)?", "auto, cpu, cuda, cuda:N or mps"),
    "dtype": Param("--dtype", r"auto|float32|bfloat16|float16", "auto, float32, bfloat16 or float16"),
    "k": Param("--k", *INT),
    "weighting": Param("--weighting", *NAME),
    "normalize": Param("--normalize", r"on|off", "on or off"),
    "vocab": Param("--vocab", r"all|text", "all or text"),
    "pc1": Param("--pc1", r"off|remove|auto|" + NUMBER[0], "off, remove, auto or a number"),
    "source": Param("--source", r"aligned|own|hybrid|expansion|distilled", "aligned, own, hybrid, expansion or distilled"),
    "terms": Param("--terms", r"tokens|words", "tokens or words"),
    "also": Param("--also", *LIST),
    "shards": Param("--shards", *INT),
    "shard": Param("--shard", *INT),
    "workers": Param("--workers", *INT),
    "gpus_per_worker": Param("--gpus-per-worker", *NUMBER),
    "datasets": Param("--datasets", *LIST),
    "quick": Param("--quick", switch=True),
    "n": Param("--n", *INT),
    "versus": Param("--versus"),
    "sizes": Param("--sizes", r"[0-9]+(,[0-9]+)*", "document counts, comma-separated (e.g. 100000,1000000)"),
    "engines": Param("--engines", *LIST),
    "only": Param("--only", r"all|query|cpu-paths", "all, query or cpu-paths"),
    "qid": Param("--explain"),
    "steps": Param("--steps", *INT),
    "data": Param("--data", *LIST),
    "batch": Param("--batch", *INT),
    "name": Param("--name", r"[A-Za-z0-9_][A-Za-z0-9_.-]*", "a model name: letters, digits, '-', '_', '.'"),
    "objective": Param("--objective", r"dense|joint", "dense or joint"),
    "sparse_weight": Param("--sparse-weight", *NUMBER),
    "sparse_target": Param("--sparse-target", r"hybrid|aligned|expansion", "hybrid, aligned or expansion"),
    "flops_weight": Param("--flops-weight", *NUMBER),
    "sparse_temperature": Param("--sparse-temperature", *NUMBER),
    "hard_negatives": Param("--hard-negatives", *INT),
    "pool": Param("--pool", *INT),
    "teacher_temperature": Param("--teacher-temperature", *NUMBER),
    "precision": Param("--precision", r"auto|float32|bfloat16", "auto, float32 or bfloat16"),
    "engine": Param("--engine"),  # each target has its own engines: see ENGINE_CHOICES
}

DATA = ("dataset", "split", "limit", "data_dir")
MODEL = ("model", "pooling", "device", "dtype")
VARIANT = ("k", "weighting", "normalize", "vocab", "pc1", "source", "terms")
ENCODE_ONLY = ("shards", "shard", "engine", "workers", "gpus_per_worker")


@dataclass(frozen=True)
class Target:
    """A make target: its stages in order (module, the parameters that stage takes) and what it needs."""

    stages: tuple[tuple[str, tuple[str, ...]], ...]
    required: tuple[str, ...] = ()
    engines: tuple[str, ...] = ()  # values `engine=` may take for this target (none: engine is not a parameter)

    @property
    def params(self) -> set[str]:
        return {p for _, names in self.stages for p in names} | ({"engine"} if self.engines else set())


ENCODE = ("pipeline.encode", DATA + MODEL)  # the first stage of the targets that need embeddings
TARGETS: dict[str, Target] = {
    "encode": Target((("pipeline.encode", DATA + MODEL + ENCODE_ONLY),), engines=("local", "ray")),
    "project": Target((ENCODE, ("pipeline.project", DATA + MODEL + VARIANT))),
    "index": Target((ENCODE, ("pipeline.index", DATA + MODEL + VARIANT))),
    "eval": Target((("pipeline.evaluate", DATA + MODEL + VARIANT + ("also", "engine")),), engines=("lucene", "qdrant")),
    "export": Target((ENCODE, ("pipeline.index", DATA + MODEL + VARIANT), ("<export>", DATA + MODEL + VARIANT)),
                     required=("engine",), engines=("qdrant", "opensearch", "elastic")),
    "beir": Target((("pipeline.beir", ("datasets", "limit") + MODEL + VARIANT + ("quick",)),)),
    "sweep": Target((("pipeline.encode", ("dataset",) + MODEL), ("studies.sweep", ("dataset",) + MODEL))),
    "analyze": Target((("studies.analyze", DATA + MODEL + ("n", "versus")),)),
    "scale": Target((("studies.scale", DATA + MODEL + ("sizes", "engines", "terms")),)),
    "bench": Target((("studies.bench", DATA + MODEL + ("only",)),)),
    "explain": Target((("pipeline.search", DATA + MODEL + VARIANT + ("qid",)),), required=("qid",)),
    "train": Target((("pipeline.train", ("dataset", "data_dir") + MODEL + (
        "steps", "data", "batch", "name", "objective", "sparse_weight", "sparse_target", "sparse_temperature",
        "flops_weight", "hard_negatives", "precision")),)),
    "distil": Target((ENCODE, ("pipeline.distil", ("dataset", "data_dir") + MODEL + (
        "steps", "batch", "pool", "flops_weight", "teacher_temperature")))),
    "demo": Target((("pipeline.demo", DATA + ("device", "dtype", "also")),)),
}
# Targets that take no parameter but the environment's (setup, test, help) need no entry: anything else is refused.
EXPORT_MODULES = {"qdrant": ("engines.qdrant", ()), "opensearch": ("pipeline.bulk", ("--engine", "opensearch")),
                  "elastic": ("pipeline.bulk", ("--engine", "elastic"))}
LIST_FLAGS = ("--also",)  # nargs="*" options: a comma-separated make value becomes several arguments


def command_line_variables(makeflags: str) -> dict[str, str]:
    """`name=value` pairs make put in MAKEFLAGS after ` -- `, unescaped (make writes `$` as `$$`, `\\ ` for a blank
    and `\\\\` for a backslash), in the order given; flags before ` -- ` (-j, --jobserver-auth) are not variables."""
    if " -- " in f" {makeflags}":
        rest = f" {makeflags}".split(" -- ", 1)[1]
    else:
        return {}
    words, current, escaped = [], [], False
    for char in rest:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == " ":
            if current:
                words.append("".join(current))
            current = []
        else:
            current.append(char)
    if current:
        words.append("".join(current))
    out: dict[str, str] = {}
    for word in words:
        name, sep, value = word.partition("=")
        if sep:
            out[name.removesuffix(":").removesuffix(":")] = value.replace("$$", "$")
    return out


def check(target: str, given: dict[str, str]) -> Target | None:
    """Refuse (InputError, one line) unknown names, names this target does not use, and malformed values."""
    spec = TARGETS.get(target)
    usable = spec.params if spec else set()
    for name, value in given.items():
        if name in ENVIRONMENT:
            continue
        if name not in PARAMS:
            known = sorted(set(PARAMS) | set(ENVIRONMENT))
            close = difflib.get_close_matches(name.lower(), known, n=1, cutoff=0.6) or \
                [k for k in known if k.lower() == name.lower()]
            hint = f"; did you mean {close[0]}?" if close else "; `make help` lists the parameters"
            raise InputError(f"unknown parameter {name}{hint}")
        if name not in usable:
            users = sorted(t for t, s in TARGETS.items() if name in s.params)
            raise InputError(f"make {target} does not use {name} (it is for: {', '.join(users)}); drop it")
        param = PARAMS[name]
        if name == "engine":
            if value not in spec.engines:
                close = difflib.get_close_matches(value, spec.engines, n=1)
                raise InputError(f"engine={value} is not an engine of make {target}: choose {', '.join(spec.engines)}"
                                 + (f" (did you mean {close[0]}?)" if close else ""))
        elif param.switch:
            if value.lower() not in ("1", "yes", "true", "on", "0", "no", "false", "off", ""):
                raise InputError(f"{name}={value}: a switch takes 1 or 0")
        elif param.pattern and not re.fullmatch(param.pattern, value):
            raise InputError(f"{name}={value!r} is not valid: {param.hint}")
    if spec:
        missing = [r for r in spec.required if r not in given]
        if missing:
            name = missing[0]
            example = f"{name}=1" if name == "qid" else f"{name}={'|'.join(spec.engines)}"
            raise InputError(f"make {target} needs {name}, e.g. make {target} {example}")
        check_variant(given)
    return spec


def check_variant(given: dict[str, str]) -> None:
    """The variant the levers ask for, built and checked before the first stage runs: `make index k=0` or
    `make index vocab=all` (a lever the default hybrid never reads) is refused before minutes of encoding; so is
    a model named in `also=` that does not exist (before the main model's runs, not after them)."""
    from encoders.presets import resolve_preset
    from plumbing.settings import Variant

    for other in filter(None, (given.get("also") or "").split(",")):
        resolve_preset(other.strip())
    levers = {name: given[name] for name in VARIANT if given.get(name)}
    if not levers:
        return

    preset = resolve_preset(given.get("model") or "smollm2", given.get("pooling") or None)
    if "k" in levers:
        levers["k"] = int(levers["k"])
    Variant.refuse_unused(preset, levers)
    Variant.build(preset, **levers)


def environment_parameters(environ: dict[str, str], given: dict[str, str]) -> list[str]:
    """Parameters set in the environment rather than on make's command line (`limit=5 make index`): make would
    read them as variables, the stages would not, so they are refused instead of silently ignored."""
    return [f"{name}={environ[name]}" for name in PARAMS if name in environ and name not in given
            and name not in ENVIRONMENT]


def stage_argv(names: tuple[str, ...], given: dict[str, str]) -> list[str]:
    """The stage's arguments for the given parameters it takes: one argument per value, never a shell word."""
    argv: list[str] = []
    for name in names:
        if name not in given or given[name] == "":
            continue
        param, value = PARAMS[name], given[name]
        if param.switch:
            if value.lower() in ("1", "yes", "true", "on"):
                argv.append(param.flag)
        elif param.flag in LIST_FLAGS:
            argv += [param.flag, *[v for v in value.split(",") if v]]
        else:
            argv += [param.flag, value]
    return argv


def commands(target: str, given: dict[str, str], python: str = sys.executable) -> list[list[str]]:
    """The argument lists the target runs, in order."""
    spec = check(target, given)
    if spec is None:
        return []
    out = []
    for module, names in spec.stages:
        argv = stage_argv(names, given)
        if module == "<export>":
            module, extra = EXPORT_MODULES[given["engine"]]
            argv = list(extra) + argv
        out.append([python, "-m", module, *argv])
    return out


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m plumbing.params <make target>   (reads the parameters from MAKEFLAGS)", file=sys.stderr)
        return 2
    target = args[0]
    given = command_line_variables(os.environ.get("MAKEFLAGS", ""))
    try:
        from_environment = environment_parameters(dict(os.environ), given)
        if from_environment:
            raise InputError(f"{', '.join(from_environment)} set in the environment; give parameters on make's command "
                             f"line (make {target} {' '.join(from_environment)}) or unset them")
        planned = commands(target, given)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    env = dict(os.environ)
    for name in ("BEIR_DIR", "IR_DATASETS_HOME"):
        if name in given:
            env[name] = os.path.abspath(given[name])
    if given.get("verbose", "0").lower() in ("1", "yes", "true", "on"):
        env[VERBOSE_ENV] = "1"
    try:
        for command in planned:
            print("+ " + " ".join(command[1:]), flush=True)
            code = subprocess.call(command, env=env)
            if code:
                return code
    except KeyboardInterrupt:  # the stage got the same Ctrl-C and said what it kept
        print(f"make {target}: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
