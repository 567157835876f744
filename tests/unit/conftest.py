"""Load the pure-Python helpers of acurl_rs without the native module.

``import acurl_rs`` loads ``acurl_rs._acurl_rs``, which may not be built, so each helper is
loaded from its file into a stand-in parent package (relative imports such as
``from .cookies import ...`` still resolve) and registered as ``acurl_rs_<name>``: the tests
simply ``import acurl_rs_errors``.
"""

from __future__ import annotations

import importlib.util
import sys
from importlib.machinery import ModuleSpec
from pathlib import Path
from types import ModuleType

PACKAGE_DIR = Path(__file__).resolve().parents[2] / "python" / "acurl_rs"
_PARENT = "_acurl_rs_pure"
MODULES = ("errors", "structures", "cookies", "request", "cabundle")


def _parent_package() -> ModuleType:
    parent = sys.modules.get(_PARENT)
    if parent is None:
        # A package with the real directory as its path but without running __init__.py.
        parent = importlib.util.module_from_spec(ModuleSpec(_PARENT, None, is_package=True))
        parent.__path__ = [str(PACKAGE_DIR)]
        sys.modules[_PARENT] = parent
    return parent


def _load(name: str) -> ModuleType:
    full_name = f"{_PARENT}.{name}"
    module = sys.modules.get(full_name)
    if module is None:
        _parent_package()
        spec = importlib.util.spec_from_file_location(full_name, PACKAGE_DIR / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[full_name] = module  # before exec: pickle and relative imports look here
        spec.loader.exec_module(module)
    sys.modules[f"acurl_rs_{name}"] = module
    return module


for _name in MODULES:
    _load(_name)
