"""Built-in dataset readers; importing this package registers each of them."""
from __future__ import annotations

import importlib

# One module per dataset. A module that is missing is skipped so a partial checkout still works.
_MODULES = ("ilidsvid", "prid2011", "mars", "dukevideo", "folder", "synthwalk")

for _name in _MODULES:
    try:
        importlib.import_module(f"{__name__}.{_name}")
    except ModuleNotFoundError as exc:  # pragma: no cover - only while readers are being written
        if exc.name != f"{__name__}.{_name}":
            raise
