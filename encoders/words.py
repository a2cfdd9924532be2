"""Word terms (`terms=words`): the words Lucene's English analyzer makes, the analyzer BM25 indexes with.

Why: sub-word index terms (`normalize=on` tokens) carry function words, unstemmed forms and word pieces: 16 terms
per scifact query against BM25's 10 words, and a hybrid over them could only reweight those pieces. Here every term
is an analyzed word (Anserini's default English analyzer: lower-casing, stopwords, Porter stemming), produced by
Lucene itself through the process's one JVM, never re-implemented:
  documents' own words  the analyzer on the whole text (BM25's own term frequencies);
  query words           the analyzer on the query text (`query=tokens`);
  aligned tokens        a vocabulary token that starts a word (its surface begins with a space) maps to the
                        analyzed term of that surface; continuation pieces, punctuation and stopwords map to none;
  a word's aligned logit  the max over the tokens mapping to it, or, for a document's own words, over the pieces
                        its whitespace-separated chunk was split into (so `photosynthesis` = max of its pieces).
"""
from __future__ import annotations

import re
from collections import Counter
from functools import cached_property, lru_cache

import numpy as np

from common.jvm import start_jvm
from encoders.vocab import escape_term, merge_max

CHUNK = re.compile(r"\S+")


class WordAnalyzer:
    """Lucene's default English analyzer (Anserini's BM25 analyzer), called through the JVM, with a cache per chunk."""

    def __init__(self) -> None:
        start_jvm()
        from pyserini.analysis import Analyzer, get_lucene_analyzer

        self._analyzer = Analyzer(get_lucene_analyzer())
        self.chunk_terms = lru_cache(maxsize=1_000_000)(self._chunk_terms)

    def terms(self, text: str) -> list[str]:
        """The analyzed terms of a text, in order, as BM25's index holds them."""
        return [escape_term(t) for t in self._analyzer.analyze(text)] if text.strip() else []

    def _chunk_terms(self, chunk: str) -> tuple[str, ...]:
        return tuple(self.terms(chunk))


@lru_cache(maxsize=4)
def word_analyzer() -> WordAnalyzer:
    """One analyzer per process (the JVM is one per process too)."""
    return WordAnalyzer()


class WordVocabulary:
    """Token id -> analyzed word term (or None), for decoding aligned tokens into words; the same interface as
    encoders.vocab.Vocabulary (`terms`, `merge`, `text_terms`), so queries and documents use either alike."""

    normalize = True

    def __init__(self, tokenizer, analyzer: WordAnalyzer | None = None) -> None:
        self.tokenizer = tokenizer
        self.analyzer = analyzer or word_analyzer()

    @cached_property
    def terms(self) -> list[str | None]:
        """Built on first use (one analyzer call per word-starting token): `query=tokens` never needs it."""
        tokenizer = self.tokenizer
        special = set(tokenizer.all_special_ids)
        tokens = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
        terms: list[str | None] = []
        for token_id, token in enumerate(tokens):
            if token is None or token_id in special:
                terms.append(None)
                continue
            surface = tokenizer.convert_tokens_to_string([token])
            starts_word = surface[:1].isspace() or token.startswith("\u2581")
            analyzed = self.analyzer.chunk_terms(surface.strip()) if starts_word else ()
            terms.append(analyzed[0] if analyzed else None)
        return terms

    @cached_property
    def has_term(self) -> np.ndarray:
        return np.array([t is not None for t in self.terms], dtype=bool)

    def __len__(self) -> int:
        return len(self.tokenizer)

    def text_terms(self, text: str) -> Counter:
        """The analyzed words of a text with their counts (queries in `query=tokens`)."""
        return Counter(self.analyzer.terms(text))

    def merge(self, token_ids, weights) -> dict[str, float]:
        """Token weights -> word weights, max over the tokens that map to one word."""
        return merge_max(self.terms, token_ids, weights)


def document_words(text: str, tokenizer, analyzer: WordAnalyzer) -> tuple[Counter, dict[str, np.ndarray]]:
    """A document's analyzed words with BM25's term frequencies, and for each word the token ids of the pieces its
    whitespace-separated chunks were split into (the full text is tokenised here: no truncation, unlike encoding)."""
    counts = Counter(analyzer.terms(text))
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids, offsets = encoded["input_ids"], encoded["offset_mapping"]
    pieces: dict[str, set[int]] = {}
    position = 0
    for match in CHUNK.finditer(text):
        words = analyzer.chunk_terms(match.group())
        if not words:
            continue
        start, end = match.span()
        while position < len(ids) and offsets[position][1] <= start:
            position += 1
        covering = set()
        scan = position
        while scan < len(ids) and offsets[scan][0] < end:
            covering.add(ids[scan])
            scan += 1
        for word in words:
            pieces.setdefault(word, set()).update(covering)
    return counts, {w: np.fromiter(p, dtype=np.int64) for w, p in pieces.items() if w in counts}
