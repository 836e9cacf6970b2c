"""Every table of encours, for Alembic: importing this module registers them all on
`Base.metadata`. Feature modules keep their tables in their own `store/*_schema.py`."""

from __future__ import annotations

import importlib
import pkgutil

import encours.store as _store
from encours.store.schema import Base

for _info in pkgutil.iter_modules(_store.__path__):
    if _info.name.endswith("_schema"):
        importlib.import_module(f"encours.store.{_info.name}")

metadata = Base.metadata
