"""Published numbers, read from their one source: Pyserini's 2CR `beir.yaml` (installed with pyserini), so the
leaderboard's reference rows and the BEIR suite's rows can never drift apart from it or from each other."""
from __future__ import annotations

from functools import lru_cache
from importlib import metadata
from pathlib import Path

import yaml


@lru_cache(maxsize=1)
def two_cr_scores() -> dict[str, dict[str, dict[str, float]]]:
    """condition -> Pyserini dataset key (`cqadupstack-android`) -> {"nDCG@10": ..., "R@100": ..., "R@1000": ...}."""
    path = Path(metadata.distribution("pyserini").locate_file("pyserini/2cr/beir.yaml"))
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    return {c["name"]: {d["dataset"]: d["scores"][0] for d in c["datasets"]} for c in document["conditions"]}


def pyserini_version() -> str:
    return metadata.version("pyserini")
