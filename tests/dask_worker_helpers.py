"""Functions the Dask tests run on workers. A module of its own, importing only what workers
already have, so that unpickling them does not import torch and the tests' fixtures there."""

from __future__ import annotations

import os
from typing import List

import pybert.recipe

# A partition holding this text ends the worker process that embeds it, once.
FATAL_TEXT = "this sentence ends its worker process the first time it is seen"


def exit_once(texts: List[str], marker: str) -> List[str]:
    """Pass ``texts`` through; the first call that sees FATAL_TEXT (marker file absent) creates
    the marker and ends its process at once, as a crash would, before returning anything."""
    if FATAL_TEXT in texts:
        try:
            fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return texts
        os.close(fd)
        os._exit(1)
    return texts


def cached_num_threads() -> List[int]:
    """num_threads of each model this worker holds in pybert's process cache."""
    return [recipe.option("num_threads") for recipe in pybert.recipe.cached_recipes()]
