"""The work of each stage as functions: what the stages in pipeline/, the studies and the Python API share.

Importing common.threads first sets OpenMP's passive wait policy before any of them loads torch."""
import common.threads  # noqa: F401
