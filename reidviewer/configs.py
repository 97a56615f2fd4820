"""One policy for reading a dataclass config back from the dict its ``to_dict`` wrote.

The model, loss, preprocessing and SynthWalk configs are stored as JSON (checkpoint metadata,
run folders, dataset sidecars) and read back with ``from_dict``, which calls
``config_from_dict`` here so every config says the same things about a bad dict: that it is not
a JSON object (and what it is), which keys are unknown and which are known, or what the
constructor refused. Keys a dict leaves out take the dataclass defaults, so a config written
before a field existed still reads. This module imports nothing of the package, so every
layer may use it.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def config_from_dict(
    cls: Callable[..., T],
    data: Any,
    what: str,
    *,
    ignore_unknown: bool = False,
    error: type[Exception] = ValueError,
) -> T:
    """Build the dataclass ``cls`` from ``data`` (a ``to_dict`` output).

    Args:
        cls: the config dataclass.
        data: the dict read back (from JSON, usually).
        what: what the config is called in messages (``"model config"``).
        ignore_unknown: drop keys ``cls`` does not have instead of refusing them (for files
            written by other versions that the caller reads anyway).
        error: the exception type raised (a ``ValueError`` subclass, so callers catching
            ``ValueError`` keep working).

    Raises:
        error: ``data`` is not a dict (naming what it is); it has unknown keys (naming them and
            the known ones) unless ``ignore_unknown``; or the constructor raised ``TypeError``
            (its message), or ``cls``'s own ``ValueError`` for a bad value, unchanged.
    """
    if not isinstance(data, dict):
        raise error(f"a {what} must be a JSON object, got {type(data).__name__}")
    known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(str(k) for k in data if k not in known)
    if unknown:
        if not ignore_unknown:
            raise error(f"unknown {what} key(s): {', '.join(unknown)} (known: {', '.join(sorted(known))})")
        data = {k: v for k, v in data.items() if k in known}
    try:
        return cls(**data)
    except TypeError as exc:  # e.g. a string where a number belongs, a non-string key
        raise error(f"invalid {what}: {exc}") from exc
