"""Word terms (encoders/words.py) and the word expansion's regulariser (encoders/joint.py), on the real SmolLM2
tokenizer, Lucene's own analyzer and a real scifact slice: the mapping of hand-picked vocabulary tokens, the word
control's postings against Lucene BM25's own document vectors, and IDF-aware FLOPS shrinking the postings."""
from __future__ import annotations

from collections import Counter

import pytest
import torch

from encoders.models import load_tokenizer
from encoders.presets import PRESETS


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer(PRESETS["smollm2"].source)


def test_vocabulary_tokens_map_to_analyzed_words(tokenizer):
    """A token that starts a word maps to that word's analyzed term; continuation pieces, punctuation and stopwords
    map to none; a word's logit is the max over the tokens that map to it."""
    from encoders.words import WordVocabulary

    vocab = WordVocabulary(tokenizer)
    term = {token: vocab.terms[tokenizer.convert_tokens_to_ids(token)]
            for token in ("Ġrunning", "ing", "Ġthe", "Ġ.", "ĠProteins", "Ġprotein", "Ġcells")}
    assert term == {"Ġrunning": "run", "ing": None, "Ġthe": None, "Ġ.": None, "ĠProteins": "protein",
                    "Ġprotein": "protein", "Ġcells": "cell"}
    ids = [tokenizer.convert_tokens_to_ids(t) for t in ("ĠProteins", "Ġprotein", "Ġthe", "Ġrunning")]
    assert vocab.merge(ids, [0.2, 0.7, 0.9, 0.4]) == {"protein": 0.7, "run": 0.4}


def test_word_control_postings_are_lucene_bm25s_own(sliced):
    """terms=words, source=own: every slice document's terms and term frequencies are exactly what Lucene's BM25
    index stores for it (its document vector), so the control is BM25 in impact form."""
    from pyserini.index.lucene import LuceneIndexReader

    from encoders.documents import own_word_vectors
    from encoders.words import word_analyzer
    from plumbing.settings import DataSettings
    from steps.needs import Needs

    data = DataSettings("scifact", "test", len(sliced.queries))
    dataset = data.load()
    reader = LuceneIndexReader(str(Needs(dataset, data).bm25()))
    analyzer = word_analyzer()
    doc_ids = list(dataset.corpus)[:25]
    counts = [Counter(analyzer.terms(dataset.corpus[d].contents)) for d in doc_ids]
    vectors, _ = own_word_vectors(counts, "bm25tf")
    for doc_id, count, vector in zip(doc_ids, counts, vectors):
        lucene = reader.get_document_vector(doc_id)
        assert dict(count) == lucene, doc_id
        assert set(vector) == set(lucene) and all(w >= 1 for w in vector.values())


def test_idf_aware_flops_shrinks_the_expansion_and_top_k_bounds_its_postings(sliced, tokenizer):
    """Postings per document are bounded by construction (own words + the top K expansion words); the IDF-aware
    FLOPS term, minimised alone over the embeddings, shrinks the expansion's weight mass, and with it the words that
    stay above the index's quantisation step (1/200 of the largest weight rounds to 0) can only fall."""
    from encoders.joint import ExpansionTarget

    texts = [d.contents for d in list(sliced.corpus.values())[:8]]
    target = ExpansionTarget(tokenizer, texts, k=64)
    torch.manual_seed(0)
    lm_head = torch.randn(len(tokenizer), 32)  # a random head: this checks the regulariser's effect, not a model
    embeddings = torch.randn(len(texts), 32, requires_grad=True)
    pairs = [(t, []) for t in texts]

    def postings(step: float) -> int:
        with torch.no_grad():
            _, weights = target.head.expansion(embeddings, lm_head, target.k)
        return int((weights >= step).sum())

    with torch.no_grad():
        step = float(target.head.expansion(embeddings, lm_head, target.k)[1].max()) / 200
    before = postings(step)
    optimiser = torch.optim.Adam([embeddings], lr=0.05)
    flops = []
    for _ in range(80):
        _, regulariser = target.batch_scores(pairs, pairs, embeddings, lm_head)
        optimiser.zero_grad()
        regulariser.backward()
        optimiser.step()
        flops.append(float(regulariser.detach()))
    assert 0.9 * len(texts) * target.k < before <= len(texts) * target.k  # top-K: at most K words per document
    after = postings(step)
    assert flops[-1] < 0.6 * flops[0] and after <= before, (flops[0], flops[-1], before, after)
