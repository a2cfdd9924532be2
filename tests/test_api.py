"""The Python API (keytokens/__init__.py): its docstring examples and the README's Python blocks run as written, on
the real scifact slice, SmolLM2 and Lucene; Pyserini's own searcher gives the lean path's hits on our index."""
from __future__ import annotations

import doctest
import re

from tests.conftest import REPO


def test_api_examples_run(embeddings):
    import keytokens.api

    result = doctest.testmod(keytokens.api, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 6 and result.failed == 0


def test_readme_python_blocks_run(embeddings):
    blocks = re.findall(r"```python\n(.*?)```", (REPO / "README.md").read_text(encoding="utf-8"), re.S)
    assert blocks, "the README has no Python example"
    namespace = {"__name__": "readme"}  # one namespace, as a reader pasting the blocks in order into one session
    for block in blocks:
        exec(compile(block, "README.md", "exec"), namespace)


def test_pyserini_searcher_equals_the_lean_path_on_every_slice_query(embeddings, sliced):
    """Pyserini's LuceneImpactSearcher with our query encoder: the same top-10 documents and scores as ours."""
    import keytokens
    from pyserini.search.lucene import LuceneImpactSearcher

    index = keytokens.index("scifact", model="smollm2", limit=5)
    ours = keytokens.search(index, sliced.queries, k=10)
    searcher = LuceneImpactSearcher(str(index.lucene), keytokens.query_encoder(index), min_idf=-1)
    for qid, text in sliced.queries.items():
        theirs = [(hit.docid, round(hit.score, 3)) for hit in searcher.search(text, k=10)]
        assert theirs == [(d, round(s, 3)) for d, s in ours[qid]]
