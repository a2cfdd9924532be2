"""Importing common.threads first sets OpenMP's passive wait policy before any stage loads torch."""
import common.threads  # noqa: F401
