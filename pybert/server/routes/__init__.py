"""The routes, one module per API family; ``ENDPOINTS`` lists them all."""

from . import native, openai, rerank, tei

ENDPOINTS = native.ENDPOINTS + openai.ENDPOINTS + tei.ENDPOINTS + rerank.ENDPOINTS

__all__ = ["ENDPOINTS"]
