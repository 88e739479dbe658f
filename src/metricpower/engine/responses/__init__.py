"""How people respond to the system (the essay's intensification): one registered class
per mechanism, one module each, switched on by its `[responses.<name>]` table. Every
module here is loaded, so a new mechanism is a new module plus its table in
scenario/schema.py `Responses`."""

from __future__ import annotations

import importlib
import pkgutil

from metricpower.engine.responses.base import RESPONSES, Response, register

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["RESPONSES", "Response", "register"]
