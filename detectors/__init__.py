"""Numeric core of collapse-guard: embeddings, the reference corpus, coverage and estimators.

This package never imports the web layer (`service/`); it is usable as a plain library.
"""
