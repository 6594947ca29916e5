"""Every piece of a network, one module each; importing this package registers them all
(see generator/registry.py). The modules are found, not listed: every module below this
package is imported once, in the order of their dotted names, which is the order of
registration and so of the spec's unions, Literals and sections (and of the choices its
error lines list). A new piece is a new module here; nothing else names it."""

from __future__ import annotations

import importlib
import pkgutil


def _modules() -> list[str]:
    found = []
    for info in pkgutil.walk_packages(__path__, prefix=f"{__name__}."):
        found.append(info.name)
    return sorted(found)


for _name in _modules():
    importlib.import_module(_name)
