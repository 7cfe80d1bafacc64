"""Built-in layer types, one family per module; importing this package registers them all.

Every module here is imported (in name order), so a new layer type is a new module with an
``@register`` class: nothing else lists it."""

import importlib
import pkgutil

__all__ = [info.name for info in pkgutil.iter_modules(__path__)]
for _name in __all__:
    importlib.import_module(f"{__name__}.{_name}")
