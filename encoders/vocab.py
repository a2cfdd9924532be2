"""Token ids -> index terms, shared by documents and queries so both sides always speak the same vocabulary.

`normalize=off` (paper-faithful): a term is the tokenizer's own token string (`Ġcat`, `▁dog`, `##ing`, `Ċ`).
`normalize=on`: the token's surface text, stripped of space markers and lower-cased (casefold), so `Ġcat`,
`cat` and `ĠCat` become one term `cat`; special tokens and pure punctuation/space tokens map to no term.
Weights of tokens that map to the same term are merged with max (a term's weight is its strongest token's, so
normalisation never inflates a document by counting the same word twice).

Lucene's pretokenized analyzer splits terms on whitespace and cuts them at 255 characters, so any whitespace or
control character left in a term is escaped as `<U+XXXX>` and an over-long term is shortened to a prefix plus a
hash, in both modes: every term round-trips through the index unchanged.
"""
from __future__ import annotations

import hashlib
import unicodedata
from collections import Counter

import numpy as np

MAX_TERM_CHARS = 255


def escape_term(term: str) -> str:
    """Escape characters a whitespace tokenizer could split on (Unicode Z*/C* categories, isspace); cap the length."""
    escaped = "".join(f"<U+{ord(c):04X}>" if c.isspace() or unicodedata.category(c)[0] in "ZC" else c for c in term)
    if len(escaped) > MAX_TERM_CHARS:
        digest = hashlib.sha1(escaped.encode("utf-8")).hexdigest()[:16]
        escaped = f"{escaped[:MAX_TERM_CHARS - 17]}#{digest}"
    return escaped


def canonical(text: str) -> str | None:
    """The normalised term for a token's surface text, or None when it holds no letter or digit."""
    term = text.strip().casefold()
    if not any(c.isalnum() for c in term):
        return None
    return escape_term(term)


class Vocabulary:
    """Maps every token id of one tokenizer to its index term (or None), in one mode, computed once."""

    def __init__(self, tokenizer, normalize: bool) -> None:
        self.normalize = normalize
        self.tokenizer = tokenizer
        size = len(tokenizer)
        tokens = tokenizer.convert_ids_to_tokens(list(range(size)))
        special = set(tokenizer.all_special_ids)
        terms: list[str | None] = []
        for token_id, token in enumerate(tokens):
            if token is None or token_id in special:
                terms.append(None)
            elif normalize:
                terms.append(canonical(tokenizer.convert_tokens_to_string([token])))
            else:
                terms.append(escape_term(token) or None)
        self.terms = terms
        self.has_term = np.array([t is not None for t in terms], dtype=bool)

    def __len__(self) -> int:
        return len(self.terms)

    def own_term_counts(self, token_ids) -> Counter:
        """Term frequencies of a text's own tokens (ids from the same tokenizer)."""
        counts: Counter = Counter()
        for token_id in token_ids:
            term = self.terms[int(token_id)]
            if term is not None:
                counts[term] += 1
        return counts

    def text_terms(self, text: str) -> Counter:
        """Term frequencies of a raw text (queries in `query=tokens` mode)."""
        return self.own_term_counts(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def merge(self, token_ids, weights) -> dict[str, float]:
        """Token weights -> term weights, merging tokens that map to one term with max."""
        return merge_max(self.terms, token_ids, weights)


def merge_max(terms: list[str | None], token_ids, weights) -> dict[str, float]:
    """Token weights -> term weights through a token -> term table (None: no term), max over a term's tokens."""
    out: dict[str, float] = {}
    for token_id, weight in zip(token_ids, weights):
        term = terms[int(token_id)]
        if term is not None and weight > out.get(term, float("-inf")):
            out[term] = float(weight)
    return out
