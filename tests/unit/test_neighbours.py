"""Words a document borrows from its dense neighbours (encoders/student.py): from the nearest documents only, in
proportion to their cosine, never more new words than the cap, the document's own words always kept."""
from __future__ import annotations

import numpy as np
from scipy.sparse import csr_matrix

from encoders.student import borrowed_words, nearest_documents


def test_nearest_documents_are_the_closest_others():
    embeddings = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]], dtype=np.float32)
    nearest, cosines = nearest_documents(embeddings, 1, chunk=3)  # a chunk boundary inside the corpus
    assert nearest.ravel().tolist() == [1, 0, 3, 2]
    assert np.all(cosines > 0.9)


def test_borrowed_words_come_from_neighbours_within_the_cap():
    # words 0..5; document 0 holds word 0, document 1 words 1-4, document 2 word 5
    own = csr_matrix(np.array([[1.0, 0, 0, 0, 0, 0],
                               [0, 4.0, 3.0, 2.0, 1.0, 0],
                               [0, 0, 0, 0, 0, 7.0]], dtype=np.float32))
    nearest = np.array([[1, 2], [0, 2], [1, 0]])
    cosines = np.array([[0.9, -0.2], [0.5, 0.5], [1.0, 0.0]])  # a negative cosine lends nothing
    borrowed = borrowed_words(nearest, cosines, own, new_words=2).toarray()
    assert borrowed[0].tolist() == [0, 4.0, 3.0, 0, 0, 0]  # the two largest of its neighbour's words
    assert borrowed[1].tolist() == [0.5, 0, 0, 0, 0, 3.5]  # half from each neighbour
    assert borrowed[2].tolist() == [0, 4.0, 3.0, 0, 0, 0]
    held = borrowed_words(np.array([[1], [0], [1]]), np.ones((3, 1)), own + csr_matrix(
        np.array([[0, 0, 0, 0, 1.0, 0], [0] * 6, [0] * 6], dtype=np.float32)), new_words=1).toarray()
    assert held[0].tolist() == [0, 4.0, 0, 0, 1.0, 0]  # a word it holds is kept beside the one new word allowed
