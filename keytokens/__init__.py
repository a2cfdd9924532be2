"""keytokens from Python: `import keytokens`, then index, search, evaluate (keytokens/api.py has the examples;
keytokens/terrier.py has the PyTerrier transformers)."""
from keytokens.api import Index, bm25, dataset, encode, evaluate, fuse, index, index_documents, query_encoder, search

__all__ = ["Index", "dataset", "index", "index_documents", "bm25", "encode", "search", "query_encoder", "fuse",
           "evaluate"]
