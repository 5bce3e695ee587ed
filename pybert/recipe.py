"""Models pickle as their recipe, the call that loaded them, not as their weights.

A class opts in with one line, ``@pickles_as_recipe()`` (from ``from_pretrained``) or
``@pickles_as_recipe("__init__")``. Its objects then pickle as (class, constructor, the
constructor's arguments with defaults filled in and paths made absolute), a few hundred bytes.
Unpickling runs the recipe through :func:`load`, a cache per process: the first unpickling in a
process maps the weights, every later one (every later task on a Dask or Ray worker) gets the
same object back. Options named in ``live_options`` (``num_threads``) are read from the object
when it is pickled, so a pickle carries the value set after loading.

>>> blob = pickle.dumps(pybert.SentenceEncoder())   # ~300 bytes: path and options
>>> pickle.loads(blob) is pickle.loads(blob)        # the second load is a cache hit
True
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import inspect
import os
import threading
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, TypeVar

__all__ = ["Recipe", "pickles_as_recipe", "recipe_of", "load", "load_count", "cached_recipes",
           "clear_cache"]

T = TypeVar("T", bound=type)


@dataclasses.dataclass(frozen=True)
class Recipe:
    """How to build a model again: ``getattr(cls, constructor)(**options)``."""

    cls: type
    constructor: str                   # "from_pretrained", or "__init__" for cls(**options)
    options: Tuple[Tuple[str, Any], ...]  # keyword arguments, in the constructor's order

    def replace(self, **changes: Any) -> "Recipe":
        """The same recipe with some options changed; only options it has can change."""
        unknown = set(changes) - {name for name, _ in self.options}
        if unknown:
            raise ValueError(f"{self.cls.__name__}.{self.constructor} has no option "
                             f"{', '.join(sorted(unknown))}; it has "
                             + ", ".join(name for name, _ in self.options))
        return dataclasses.replace(self, options=tuple(
            (name, changes.get(name, value)) for name, value in self.options))

    def option(self, name: str) -> Any:
        return dict(self.options)[name]

    def build(self) -> Any:
        """Run the recipe (no cache): the constructor call it records."""
        make = self.cls if self.constructor == "__init__" else getattr(self.cls, self.constructor)
        return make(**dict(self.options))

    def __dask_tokenize__(self) -> Tuple[Any, ...]:
        return ("pybert.Recipe", self.cls.__module__, self.cls.__qualname__, self.constructor,
                self.options)

    def __repr__(self) -> str:
        args = ", ".join(f"{name}={value!r}" for name, value in self.options)
        call = "" if self.constructor == "__init__" else f".{self.constructor}"
        return f"Recipe({self.cls.__qualname__}{call}({args}))"


# The process-level cache: one object per recipe, and how many times each was built here.
_lock = threading.Lock()
_models: Dict[Recipe, Any] = {}
_loads: "collections.Counter[Recipe]" = collections.Counter()


def load(recipe: Recipe) -> Any:
    """The object of ``recipe``, built on first use in this process and cached after that.

    Thread-safe: tasks that unpickle the same model at once build it once. Unpickling a model
    calls this."""
    if not isinstance(recipe, Recipe):
        raise TypeError(f"load() takes a pybert Recipe, got {type(recipe).__name__}")
    with _lock:
        model = _models.get(recipe)
        if model is None:
            model = recipe.build()
            _models[recipe] = model
            _loads[recipe] += 1
        return model


def load_count(recipe: Optional[Recipe] = None) -> int:
    """How many times this process has built ``recipe`` (default: any recipe) through the
    cache. A Dask worker that ran many tasks of one model reports 1."""
    with _lock:
        return sum(_loads.values()) if recipe is None else _loads[recipe]


def cached_recipes() -> List[Recipe]:
    """The recipes whose models this process holds in its cache."""
    with _lock:
        return list(_models)


def clear_cache() -> None:
    """Drop every cached model (and reset the load counts); the next unpickling loads again."""
    with _lock:
        _models.clear()
        _loads.clear()


def _plain(name: str, value: Any) -> Any:
    """An argument as the recipe stores it: local paths absolute (a Hub model id stays as it is,
    to be resolved again where it is unpickled), everything hashable."""
    if isinstance(value, os.PathLike) or (name == "path" and isinstance(value, str)
                                          and os.path.exists(value)):
        return os.path.abspath(os.fspath(value))
    try:
        hash(value)
    except TypeError:
        raise TypeError(f"option {name}={value!r} cannot be part of a pickled recipe: "
                        "options must be hashable (paths, numbers, strings, None)") from None
    return value


def _record(cls: type, constructor: str, signature: inspect.Signature, args: Sequence[Any],
            kwargs: Dict[str, Any]) -> Recipe:
    bound = signature.bind(None, *args, **kwargs)  # None stands for cls / self
    bound.apply_defaults()
    options = []
    for i, (name, value) in enumerate(bound.arguments.items()):
        if i == 0:
            continue
        if signature.parameters[name].kind is inspect.Parameter.VAR_KEYWORD:
            options.extend((k, _plain(k, v)) for k, v in value.items())
        else:
            options.append((name, _plain(name, value)))
    return Recipe(cls, constructor, tuple(options))


def pickles_as_recipe(constructor: str = "from_pretrained",
                      live_options: Sequence[str] = ("num_threads",)) -> Callable[[T], T]:
    """Class decorator: objects made by ``cls.<constructor>(...)`` pickle as that call.

    ``constructor`` is a classmethod name, or ``"__init__"``. Objects made another way (from a
    weight store in memory, say) refuse to pickle with a TypeError. Subclasses inherit the
    behaviour; one that overrides the constructor opts in again with the same line.
    """

    def decorate(cls: T) -> T:
        original = inspect.getattr_static(cls, constructor)
        is_init = constructor == "__init__"
        if not is_init and not isinstance(original, classmethod):
            raise TypeError(f"{cls.__name__}.{constructor} must be a classmethod or __init__")
        func = original if is_init else original.__func__
        signature = inspect.signature(func)
        if any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in signature.parameters.values()):
            raise TypeError(f"{cls.__name__}.{constructor} takes *args; a recipe needs names")

        @functools.wraps(func)
        def wrapper(first: Any, *args: Any, **kwargs: Any) -> Any:
            result = func(first, *args, **kwargs)
            made = type(first) if is_init else first
            obj = first if is_init else result
            # Only the outermost opted-in constructor records: a subclass that overrides it
            # without opting in must not pickle as its parent's call.
            if inspect.getattr_static(made, constructor) is wrapped:
                obj._pybert_recipe = _record(made, constructor, signature, args, kwargs)
            return result

        wrapped = wrapper if is_init else classmethod(wrapper)
        setattr(cls, constructor, wrapped)

        def __reduce__(self: Any) -> Tuple[Callable[[Recipe], Any], Tuple[Recipe]]:
            return load, (recipe_of(self, live_options),)

        cls._pybert_constructor = constructor  # type: ignore[attr-defined]
        cls.__reduce__ = __reduce__  # type: ignore[assignment]
        cls.__dask_tokenize__ = lambda self: recipe_of(self, live_options)  # type: ignore
        return cls

    return decorate


def recipe_of(obj: Any, live_options: Sequence[str] = ("num_threads",)) -> Recipe:
    """The recipe ``obj`` pickles as: its constructor call, with the current value of each live
    option it has. TypeError when ``obj`` was not made by an opted-in constructor."""
    recipe: Optional[Recipe] = getattr(obj, "_pybert_recipe", None)
    if recipe is None:
        name = type(obj).__name__
        constructor = getattr(type(obj), "_pybert_constructor", "from_pretrained")
        call = f"{name}(path)" if constructor == "__init__" else f"{name}.{constructor}(path)"
        raise TypeError(f"this {name} cannot be pickled: it pickles as the call that loaded it, "
                        f"{call}, and this one was built from objects in memory")
    names = {name for name, _ in recipe.options}
    return recipe.replace(**{name: getattr(obj, name) for name in live_options if name in names})
