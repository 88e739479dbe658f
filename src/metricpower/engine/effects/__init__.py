"""What consequences do: one registered class per effect, one module each, named by the
scenario's `effect` key (scenario/schema.py `EFFECTS` declares each name and whether it
acts on a service's attempts and is a sanction). Every module here is loaded, so a new
effect is a new module: see the README's contributor section."""

from __future__ import annotations

import importlib
import pkgutil

from metricpower.engine.effects.base import EFFECTS, Effect, register

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["EFFECTS", "Effect", "register"]
