"""keytokens from Python: `import keytokens`, then index, search, evaluate (keytokens/api.py has the examples)."""
from keytokens.api import Index, dataset, evaluate, index, index_documents, query_encoder, search

__all__ = ["Index", "dataset", "index", "index_documents", "search", "query_encoder", "evaluate"]
