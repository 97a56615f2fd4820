"""Model plugins: any code that turns a tracklet's frames into a feature, used like a checkpoint.

A *model factory* takes an optional argument string (``--model NAME:ARG`` gives ``ARG``) and
returns a model object with

* ``embed(frames) -> (feature, weights)``: ``frames`` is uint8 ``(T, H, W, 3)`` RGB (the
  tracklet's frames as ``reidviewer.data.frames.read_frame`` reads them); ``feature`` a 1-D
  float array; ``weights`` None or an ``(R, T)`` array of per-frame weights (one row, or one per
  refinement iteration), shown in the attention plot;
* optionally ``embed_batch(list of frames) -> list of (feature, weights)``, called with several
  tracklets at once when present;
* ``cache_key``: a string that changes whenever the model's output would (weights file,
  version, settings). Results are cached in the workspace under it.

Factories are found in three places, the first that knows the name wins:

1. ``register_model(name, factory)`` in this process (tests, notebooks, scripts);
2. the built-ins, registered the same way: ``pixels`` (``reidviewer.model.pixels``);
3. installed packages, through the entry-point group ``reidviewer.models``::

       [project.entry-points."reidviewer.models"]
       mymodel = "mypackage.reid:make_model"

A plugin is code its user installed, trusted like any package; a file opened with
``--checkpoint`` is still never unpickled. This module imports neither torch nor Qt.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from importlib import metadata
from typing import Any, Protocol

from reidviewer.errors import ReidViewerError, UsageError

#: The entry-point group installed packages register their model factories under.
ENTRY_POINT_GROUP = "reidviewer.models"
#: Names that are not models: ``imported:NAME`` refers to results saved by ``reidviewer import``.
RESERVED = ("imported",)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class ReidModel(Protocol):
    """What a factory returns (``embed_batch`` is optional)."""

    cache_key: str

    def embed(self, frames: Any) -> tuple[Any, Any]: ...


Factory = Callable[[str | None], Any]


class ModelPluginError(ReidViewerError):
    """A model plugin cannot be found, loaded or run, or returned something unusable."""

    def __init__(self, name: str, problem: str) -> None:
        self.name = name
        self.problem = problem
        super().__init__(f"model {name!r}: {problem}")


_REGISTRY: dict[str, Factory] = {}
_BUILTINS: dict[str, str] = {"pixels": "reidviewer.model.pixels:create"}


def register_model(name: str, factory: Factory, *, replace: bool = False) -> None:
    """Make ``--model NAME[:ARG]`` build its model with ``factory(ARG or None)``.

    Raises:
        UsageError: a bad or reserved name, or one already registered (unless ``replace``).
    """
    if not isinstance(name, str) or not _NAME.match(name):
        raise UsageError(f"model name {name!r}: use letters, digits, '_', '-' and '.' (no ':')")
    if name in RESERVED:
        raise UsageError(f"model name {name!r} is reserved ({name}:NAME opens results saved by reidviewer import)")
    if not callable(factory):
        raise UsageError(f"model {name!r}: the factory must be callable")
    if name in _REGISTRY and not replace and _REGISTRY[name] is not factory:
        raise UsageError(f"model {name!r} is already registered (pass replace=True to replace it)")
    _REGISTRY[name] = factory


def unregister_model(name: str) -> None:
    """Forget a model registered with ``register_model`` (no error when unknown)."""
    _REGISTRY.pop(name, None)


def _entry_points() -> dict[str, metadata.EntryPoint]:
    try:
        eps = metadata.entry_points(group=ENTRY_POINT_GROUP)
    except Exception:  # noqa: BLE001 - a broken distribution's metadata must not break the CLI
        return {}
    return {ep.name: ep for ep in eps}


def available_models() -> dict[str, str]:
    """Every model name and where it comes from (``registered``, ``built-in`` or the entry point)."""
    out = {name: f"entry point {ep.value}" for name, ep in _entry_points().items()}
    out.update({name: "built-in" for name in _BUILTINS})
    out.update({name: "registered" for name in _REGISTRY})
    return dict(sorted(out.items()))


def parse_model_spec(spec: str) -> tuple[str, str | None]:
    """``NAME[:ARG]`` → ``(NAME, ARG or None)``; the argument may itself hold ``:``."""
    if not isinstance(spec, str) or not spec.strip():
        raise UsageError("--model needs a name: NAME or NAME:ARG")
    name, sep, arg = spec.strip().partition(":")
    if not _NAME.match(name):
        raise UsageError(f"--model {spec!r}: {name!r} is not a model name")
    return name, (arg if sep else None)


def _import_object(value: str) -> Any:
    module, _, attr = value.partition(":")
    from importlib import import_module

    obj: Any = import_module(module)
    for part in attr.split(".") if attr else []:
        obj = getattr(obj, part)
    return obj


def find_factory(name: str) -> Factory:
    """The factory of ``name``.

    Raises:
        ModelPluginError: unknown, or its entry point cannot be loaded.
    """
    if name in _REGISTRY:
        return _REGISTRY[name]
    if name in _BUILTINS:
        return _import_object(_BUILTINS[name])
    eps = _entry_points()
    if name in eps:
        try:
            return eps[name].load()
        except Exception as exc:  # noqa: BLE001 - report any import failure of the plugin as one line
            raise ModelPluginError(name, f"entry point {eps[name].value!r} ({ENTRY_POINT_GROUP}) cannot be loaded: "
                                         f"{type(exc).__name__}: {exc}") from exc
    known = ", ".join(available_models()) or "none"
    raise ModelPluginError(name, f"no such model (available: {known}; imported:NAME for results saved by "
                                 f"reidviewer import; installed packages add models under the entry-point group "
                                 f"{ENTRY_POINT_GROUP!r})")


def load_model(spec: str) -> tuple[str, str | None, Any]:
    """Build the model ``NAME[:ARG]`` names: ``(name, arg, model)``.

    Raises:
        ModelPluginError: unknown name, the factory fails, or the model lacks ``embed`` / ``cache_key``.
    """
    name, arg = parse_model_spec(spec)
    factory = find_factory(name)
    try:
        model = factory(arg)
    except ReidViewerError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise ModelPluginError(name, f"the factory failed for argument {arg!r}: {type(exc).__name__}: {exc}") from exc
    if not callable(getattr(model, "embed", None)):
        raise ModelPluginError(name, "the factory returned an object without an embed(frames) method")
    key = getattr(model, "cache_key", None)
    if not isinstance(key, str) or not key:
        raise ModelPluginError(name, "the model has no cache_key string (it keys the cached results)")
    return name, arg, model
