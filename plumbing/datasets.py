"""The one place that reads datasets: corpus, queries and qrels of a BEIR-style dataset for one split.

Resolution order (first hit wins): an explicit `data_dir`, then `<BEIR_DIR>/<dataset>/` in BEIR's own layout
(corpus.jsonl, queries.jsonl, qrels/<split>.tsv), then ir_datasets (`beir/<name>/<split>`, or `beir/<name>` for
sets with a single split). Broken files are refused with one line naming file and line; odd but valid content
(BOM, CRLF, empty fields, any script) is kept as is.

Its CLI, `python -m pipeline.inspect_dataset --dataset scifact [--split test] [--limit N]`, prints what was found.
"""
from __future__ import annotations

import csv
import hashlib
import json
import os
import warnings
import zipfile
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Iterator

from common.errors import InputError


@dataclass(frozen=True)
class Document:
    """A corpus entry; `contents` is what encoders and BM25 read (BEIR convention: title + " " + text)."""

    doc_id: str
    title: str
    text: str

    @property
    def contents(self) -> str:
        return f"{self.title} {self.text}".strip() if self.title else self.text


@dataclass
class Dataset:
    """A dataset split held in memory, in corpus file order (the order every stage keeps)."""

    name: str
    split: str
    source: str
    corpus: dict[str, Document]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]
    notes: list[str] = field(default_factory=list)

    @cached_property
    def fingerprint(self) -> dict:
        """What the corpus and queries are, beyond their name: counts and a hash of ids and texts. Every artifact
        records it, so an index of another corpus under the same dataset name is never taken as up to date. Hashed
        once per loaded dataset: every run of an evaluation asks for it."""
        corpus = hashlib.sha1()
        for doc in self.corpus.values():
            corpus.update(f"{doc.doc_id}\t{doc.contents}\n".encode("utf-8", "surrogatepass"))
        queries = hashlib.sha1()
        for qid, text in self.queries.items():
            queries.update(f"{qid}\t{text}\n".encode("utf-8", "surrogatepass"))
        return {"documents": len(self.corpus), "corpus_sha1": corpus.hexdigest()[:16],
                "queries": len(self.queries), "queries_sha1": queries.hexdigest()[:16], "split": self.split}

    def summary(self) -> str:
        n_qrels = sum(len(v) for v in self.qrels.values())
        return (f"{self.name}/{self.split} from {self.source}: {len(self.corpus):,} docs, "
                f"{len(self.queries):,} queries, {n_qrels:,} qrels")


def _read_jsonl(path: Path) -> Iterator[tuple[int, dict]]:
    """Yield (line number, object) from a JSONL file; refuse bad UTF-8 or non-JSON lines with file:line."""
    if not path.is_file():
        raise InputError(f"missing file {path}: a BEIR folder needs corpus.jsonl, queries.jsonl and qrels/<split>.tsv")
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise InputError(f"{path}:{number}: invalid UTF-8 at byte {exc.start}; re-encode the file as UTF-8") from None
            if number == 1:
                line = line.lstrip("\ufeff")
            if not line.strip():
                continue
            try:
                obj = json.loads(line, strict=False)  # raw control characters inside strings are kept
            except json.JSONDecodeError as exc:
                raise InputError(f"{path}:{number}: not a JSON object ({exc.msg}); each line must be one JSON object") from None
            if not isinstance(obj, dict):
                raise InputError(f"{path}:{number}: not a JSON object; each line must be one JSON object")
            yield number, obj


def _required_id(obj: dict, path: Path, number: int) -> str:
    if "_id" not in obj:
        raise InputError(f"{path}:{number}: missing '_id'; every BEIR line needs an '_id' field")
    return str(obj["_id"])


def read_corpus(path: Path) -> dict[str, Document]:
    corpus: dict[str, Document] = {}
    for number, obj in _read_jsonl(path):
        doc_id = _required_id(obj, path, number)
        if doc_id in corpus:
            raise InputError(f"{path}:{number}: duplicate document id {doc_id!r}; document ids must be unique")
        corpus[doc_id] = Document(doc_id, str(obj.get("title") or ""), str(obj.get("text") or ""))
    return corpus


def read_queries(path: Path) -> dict[str, str]:
    queries: dict[str, str] = {}
    for number, obj in _read_jsonl(path):
        query_id = _required_id(obj, path, number)
        if query_id in queries:
            raise InputError(f"{path}:{number}: duplicate query id {query_id!r}; query ids must be unique")
        queries[query_id] = str(obj.get("text") or "")
    return queries


def read_qrels(path: Path) -> dict[str, dict[str, int]]:
    """BEIR qrels TSV (query-id, corpus-id, score, with a header line)."""
    if not path.is_file():
        raise InputError(f"missing file {path}: the split's qrels must be at qrels/<split>.tsv")
    qrels: dict[str, dict[str, int]] = {}
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            for number, row in enumerate(csv.reader(handle, delimiter="\t"), start=1):
                if not row or (number == 1 and row[0] == "query-id"):
                    continue
                if len(row) < 3:
                    raise InputError(f"{path}:{number}: expected 3 tab-separated columns (query-id, corpus-id, score)")
                try:
                    score = int(row[2])
                except ValueError:
                    raise InputError(f"{path}:{number}: relevance {row[2]!r} is not an integer") from None
                qrels.setdefault(row[0].strip(), {})[row[1].strip()] = score
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: invalid UTF-8 at byte {exc.start}; re-encode the file as UTF-8") from None
    return qrels


def _drop_unknown(dataset: Dataset) -> None:
    """Qrels naming unknown docs or queries are warned about (with counts) and dropped, so evaluation goes on."""
    unknown_docs = unknown_queries = 0
    kept: dict[str, dict[str, int]] = {}
    for query_id, judged in dataset.qrels.items():
        if query_id not in dataset.queries:
            unknown_queries += 1
            continue
        known = {d: s for d, s in judged.items() if d in dataset.corpus}
        unknown_docs += len(judged) - len(known)
        if known:
            kept[query_id] = known
    if unknown_docs or unknown_queries:
        message = (f"{dataset.name}/{dataset.split}: qrels name {unknown_docs} unknown document(s) and "
                   f"{unknown_queries} unknown query(ies); evaluating on the {len(kept)} judged queries that exist")
        warnings.warn(message, stacklevel=3)
        dataset.notes.append(message)
    dataset.qrels = kept
    dataset.queries = {qid: text for qid, text in dataset.queries.items() if qid in kept}


def check_usable(dataset: Dataset, corpus_file: str, qrels_file: str, judged: int) -> Dataset:
    """Refuse, before any model loads, a split nothing can be evaluated on: an empty corpus, or qrels that judge no
    known query (every later stage would fail on it, or leave empty runs behind). A corpus with no queries and no
    qrels at all (`judged` = 0 qrels lines) is a corpus to index and search, not an error; evaluating it is refused
    by the evaluate stage."""
    if not dataset.corpus:
        raise InputError(f"{corpus_file} holds 0 documents; a corpus needs at least one document")
    if not dataset.qrels and (judged or dataset.queries):
        raise InputError(f"{qrels_file}: no judged query of the {dataset.split} split is in the queries and corpus "
                         f"({len(dataset.queries)} queries judged); check the qrels' query and document ids")
    return dataset


def load_beir_folder(folder: Path, name: str, split: str) -> Dataset:
    corpus = read_corpus(folder / "corpus.jsonl")
    all_queries = read_queries(folder / "queries.jsonl")
    qrels = read_qrels(folder / "qrels" / f"{split}.tsv")
    queries = {qid: text for qid, text in all_queries.items() if qid in qrels}
    dataset = Dataset(name, split, str(folder), corpus, queries, qrels)
    _drop_unknown(dataset)
    return check_usable(dataset, str(folder / "corpus.jsonl"), str(folder / "qrels" / f"{split}.tsv"),
                        sum(len(j) for j in qrels.values()) + len(all_queries))


# ir_datasets ids where BEIR's name is not the collection Pyserini and the BEIR paper report on: Touché is v2.
IR_DATASETS_NAMES = {"webis-touche2020": "webis-touche2020/v2"}


def ir_datasets_id(name: str, split: str) -> str:
    """`beir/<name>/<split>`, or `beir/<name>` for a set with a single split, which is its test split: never taken for
    train or dev, so test qrels can never stand in for a tuning split."""
    import ir_datasets

    name = IR_DATASETS_NAMES.get(name, name)
    candidates = (f"beir/{name}/{split}", f"beir/{name}") if split == "test" else (f"beir/{name}/{split}",)
    for candidate in candidates:
        try:
            ir_datasets.registry[candidate]
            return candidate
        except KeyError:
            continue
    raise InputError(
        f"unknown dataset {name!r} (split {split!r}): not found as a BEIR folder under BEIR_DIR and ir_datasets has no "
        f"'beir/{name}/{split}'; pass data_dir=<folder with corpus.jsonl> or a BEIR name such as scifact")


def _drop_empty_downloads(ds_id: str) -> None:
    """A failed download leaves 0-byte files in ir_datasets' cache that a later run would take as the data."""
    home = Path(os.environ.get("IR_DATASETS_HOME") or Path.home() / ".ir_datasets")
    folder = home.joinpath(*ds_id.split("/")[:2])  # beir/<name>: where its download lands
    if folder.is_dir():
        for path in folder.rglob("*"):
            if path.is_file() and path.stat().st_size == 0:
                path.unlink()


def load_ir_datasets(name: str, split: str) -> Dataset:
    """Load through ir_datasets; its cache (IR_DATASETS_HOME) may be seeded offline with `seed_ir_datasets_cache`."""
    import ir_datasets

    ds_id = ir_datasets_id(name, split)
    ds = ir_datasets.load(ds_id)
    try:
        corpus = {}
        for doc in ds.docs_iter():
            if doc.doc_id in corpus:
                raise InputError(f"ir_datasets {ds_id}: duplicate document id {doc.doc_id!r}")
            corpus[doc.doc_id] = Document(doc.doc_id, getattr(doc, "title", "") or "", doc.text or "")
        qrels: dict[str, dict[str, int]] = {}
        for qrel in ds.qrels_iter():
            qrels.setdefault(qrel.query_id, {})[qrel.doc_id] = int(qrel.relevance)
        queries = {q.query_id: q.text for q in ds.queries_iter() if q.query_id in qrels}
    except InputError:
        raise
    except Exception as exc:  # ir_datasets raises plain exceptions when it cannot download
        _drop_empty_downloads(ds_id)
        raise InputError(f"ir_datasets could not provide {ds_id} ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); "
                         f"without network, pass data_dir=<BEIR folder> or BEIR_DIR, or seed its cache "
                         f"(python -m pipeline.inspect_dataset --seed-ir-datasets <BEIR folder>)") from None
    dataset = Dataset(name, split, f"ir_datasets:{ds_id}", corpus, queries, qrels)
    _drop_unknown(dataset)
    return check_usable(dataset, f"ir_datasets {ds_id} docs", f"ir_datasets {ds_id} qrels",
                        sum(len(j) for j in qrels.values()))


def default_beir_dir() -> Path | None:
    value = os.environ.get("BEIR_DIR")
    return Path(value) if value else None


def load_dataset(name: str, split: str = "test", data_dir: str | Path | None = None,
                 beir_dir: str | Path | None = None, limit: int | None = None) -> Dataset:
    """Resolve and load a dataset split (see module docstring); `limit` takes a deterministic slice."""
    if limit is not None and limit <= 0:
        raise InputError(f"limit={limit}: must be a positive number of queries")
    if data_dir:
        folder = Path(data_dir)
        if not folder.is_dir():
            raise InputError(f"data_dir={folder} does not exist; point it at a folder with corpus.jsonl, queries.jsonl, qrels/")
        dataset = load_beir_folder(folder, name, split)
    else:
        root = Path(beir_dir) if beir_dir else default_beir_dir()
        if root is not None and (root / name / "corpus.jsonl").is_file():
            dataset = load_beir_folder(root / name, name, split)
        else:
            dataset = load_ir_datasets(name, split)
    return slice_dataset(dataset, limit) if limit else dataset


def slice_dataset(dataset: Dataset, limit: int) -> Dataset:
    """First `limit` queries, every document they judge, then the first corpus documents up to limit*10 in all.

    Deterministic (file order), so small runs are repeatable and still have distractors. A limit larger than
    the dataset keeps everything.
    """
    query_ids = list(dataset.queries)[:limit]
    qrels = {q: dataset.qrels[q] for q in query_ids if q in dataset.qrels}
    keep = {d for judged in qrels.values() for d in judged}
    budget = max(limit * 10, len(keep))
    for doc_id in dataset.corpus:
        if len(keep) >= budget:
            break
        keep.add(doc_id)
    corpus = {d: doc for d, doc in dataset.corpus.items() if d in keep}
    queries = {q: dataset.queries[q] for q in query_ids}
    return Dataset(dataset.name, dataset.split, f"{dataset.source} (limit={limit})", corpus, queries, qrels,
                   list(dataset.notes))


def seed_ir_datasets_cache(beir_folder: Path, name: str, home: Path | None = None) -> Path:
    """Zip a local BEIR folder into ir_datasets' download cache so `beir/<name>/...` loads offline.

    ir_datasets checks the md5 only when it downloads, so a BEIR-layout zip at <home>/beir/<name>/source.zip
    is read as if it had been downloaded.
    """
    home = Path(home or os.environ.get("IR_DATASETS_HOME") or Path.home() / ".ir_datasets")
    target = home / "beir" / name / "source.zip"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".zip.tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(beir_folder.rglob("*")):
            if path.is_file():
                archive.write(path, f"{name}/{path.relative_to(beir_folder).as_posix()}")
    tmp.replace(target)
    return target


def split_dev(train: Dataset, n_dev: int, seed: int) -> tuple[list[str], list[str]]:
    """Train query ids -> (trained on, held out as the dev split); seeded, so `make train`, `make distil` and the
    studies hold out the same queries: an embedder and a student are chosen on queries neither was trained on."""
    import numpy as np

    ids = sorted(q for q in train.queries if any(r > 0 for r in train.qrels.get(q, {}).values()))
    rng = np.random.default_rng(seed)
    held = set(rng.choice(ids, size=min(n_dev, len(ids) // 5), replace=False).tolist()) if n_dev else set()
    return [q for q in ids if q not in held], sorted(held)


def evaluation_split(dataset: str) -> str:
    """The split BEIR evaluates a dataset on: msmarco's dev, every other dataset's test."""
    return "dev" if dataset == "msmarco" else "test"
