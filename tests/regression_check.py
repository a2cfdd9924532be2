"""Behaviour check for refactors: the same slice evaluation at a base revision and in the working tree, compared.

    python -m tests.regression_check [BASE_REV] [--limit N]

Runs `python -m pipeline.evaluate --dataset scifact --limit N --no-train` in a git worktree of BASE_REV (default
HEAD) and in this tree, each with its own index/run/model folders (the GGUF cache is shared), then compares what
the redesign promised to keep: every JsonVectorCollection file byte for byte, every Lucene index's document count,
every TREC run byte for byte, and every metric in metrics.json. Prints the differences; exit 0 when there are none.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def evaluate_in(tree: Path, out: Path, limit: int) -> None:
    shared = REPO.parent / "shared" / "data" / "beir"
    env = {"BEIR_DIR": str(shared), **os.environ, "KEYTOKENS_INDEXES": str(out / "indexes"), "KEYTOKENS_RUNS": str(out / "runs"),
           "KEYTOKENS_MODELS": str(out / "models"), "KEYTOKENS_CACHE": str(REPO / ".cache"),
           "PYTHONPATH": str(tree)}
    command = [sys.executable, "-m", "pipeline.evaluate", "--dataset", "scifact", "--limit", str(limit),
               "--no-train", "--device", "cpu"]
    subprocess.run(command, cwd=tree, env=env, check=True, stdout=subprocess.DEVNULL)


def files(root: Path, pattern: str) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob(pattern))}


def lucene_counts(root: Path) -> dict[str, int]:
    counts = {}
    for path in sorted(root.rglob("lucene.manifest.json")):
        counts[str(path.parent.relative_to(root))] = json.loads(path.read_text())["lucene"]["documents"]
    for path in sorted(root.rglob("bm25/manifest.json")):
        counts[str(path.parent.relative_to(root))] = json.loads(path.read_text())["lucene"]["documents"]
    return counts


def metrics(root: Path) -> dict[str, dict]:
    found = {}
    for path in sorted(root.rglob("metrics.json")):
        found.update({f"{path.parent.name}/{r['name']}": r["metrics"] for r in json.loads(path.read_text())["runs"]})
    return found


def compare(before: Path, after: Path) -> list[str]:
    problems = []
    for what, get in (("collection file", lambda r: files(r / "indexes", "collection/*.jsonl")),
                      ("Lucene document count", lambda r: lucene_counts(r / "indexes")),
                      ("TREC run", lambda r: files(r / "runs", "*.trec")),
                      ("metrics", lambda r: metrics(r / "runs"))):
        old, new = get(before), get(after)
        if not old:
            problems.append(f"no {what} found in the base outputs")
        for name in sorted(set(old) | set(new)):
            if old.get(name) != new.get(name):
                problems.append(f"{what} differs: {name}" + ("" if name in old and name in new else " (only in one)"))
        print(f"{what}: {len(old)} before, {len(new)} after, {sum(old.get(n) == new.get(n) for n in old)} identical")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("base", nargs="?", default="HEAD")
    parser.add_argument("--limit", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        base_tree = scratch / "base"
        subprocess.run(["git", "worktree", "add", "--detach", "-q", str(base_tree), args.base], cwd=REPO, check=True)
        try:
            evaluate_in(base_tree, scratch / "before", args.limit)
            evaluate_in(REPO, scratch / "after", args.limit)
            problems = compare(scratch / "before", scratch / "after")
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(base_tree)], cwd=REPO, check=False)
    for line in problems:
        print(line)
    print("identical" if not problems else f"{len(problems)} difference(s)")
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main())
