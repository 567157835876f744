"""Case-insensitive mapping used for response headers.

HTTP header names are case-insensitive, so lookups must be too. Keys are stored and
iterated lower-cased because acurl did that: code doing ``dict(r.headers)`` or
``"content-type" in r.headers.keys()`` keeps working. Like acurl's, the class is a ``dict``
subclass (acurl's own tests check ``isinstance(r.headers, dict)``, and ``json.dumps`` or
``{**r.headers}`` take it as a dict).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

__all__ = ["CaseInsensitiveDict"]

_VT = TypeVar("_VT")
_MISSING: Any = object()


def _fold(key: Any) -> Any:
    return key.lower() if isinstance(key, str) else key


def _pairs(data: Any) -> Iterable[tuple[Any, Any]]:
    if isinstance(data, Mapping):
        return data.items()
    if hasattr(data, "keys"):  # dict.update's rule: anything with keys() is a mapping
        return ((k, data[k]) for k in data.keys())
    return data  # type: ignore[no-any-return]


class CaseInsensitiveDict(dict[str, _VT]):
    """A dict whose str keys match regardless of case; keys are kept lower-cased.

    Every method that takes a key folds it, so ``d["Content-Type"]``, ``d.get("CONTENT-TYPE")``,
    ``"content-type" in d``, ``d.pop(...)`` and ``d.setdefault(...)`` all find the same entry;
    ``update``, ``copy``, ``|`` and ``|=`` keep the keys folded. ``popitem`` removes the last
    item, as ``dict.popitem`` (and acurl's dict subclass) did. The views (``keys()``,
    ``items()``) are dict's own and hold the lower-cased keys.
    """

    __slots__ = ()

    def __init__(
        self,
        data: Mapping[str, _VT] | Iterable[tuple[str, _VT]] | None = None,
        **kwargs: _VT,
    ) -> None:
        super().__init__()
        if data is not None:
            self.update(data)
        if kwargs:
            self.update(kwargs)

    def __getitem__(self, key: str) -> _VT:
        return super().__getitem__(_fold(key))

    def __setitem__(self, key: str, value: _VT) -> None:
        super().__setitem__(_fold(key), value)

    def __delitem__(self, key: str) -> None:
        super().__delitem__(_fold(key))

    def __contains__(self, key: object) -> bool:
        return super().__contains__(_fold(key))

    def get(self, key: str, default: Any = None) -> Any:
        return super().get(_fold(key), default)

    def pop(self, key: str, default: Any = _MISSING) -> Any:
        if default is _MISSING:
            return super().pop(_fold(key))
        return super().pop(_fold(key), default)

    def setdefault(self, key: str, default: Any = None) -> Any:
        return super().setdefault(_fold(key), default)

    def update(self, data: Any = (), /, **kwargs: _VT) -> None:
        setitem = super().__setitem__
        for key, value in _pairs(data):
            setitem(_fold(key), value)
        for key, value in kwargs.items():
            setitem(_fold(key), value)

    @classmethod
    def fromkeys(  # type: ignore[override]
        cls, keys: Iterable[str], value: Any = None
    ) -> CaseInsensitiveDict[Any]:
        return cls((key, value) for key in keys)

    def lower_items(self) -> Iterable[tuple[str, _VT]]:
        """(lower-cased key, value) pairs: ``items()`` here, kept for parity with requests."""
        return iter(self.items())

    def copy(self) -> CaseInsensitiveDict[_VT]:
        """A shallow copy that is still case-insensitive (``dict.copy`` would not be)."""
        return CaseInsensitiveDict(self)

    def __copy__(self) -> CaseInsensitiveDict[_VT]:
        return self.copy()

    def __or__(self, other: Any) -> Any:
        if not isinstance(other, Mapping):
            return NotImplemented
        new = self.copy()
        new.update(other)
        return new

    def __ror__(self, other: Any) -> Any:
        if not isinstance(other, Mapping):
            return NotImplemented
        new: CaseInsensitiveDict[_VT] = CaseInsensitiveDict(other)
        new.update(self)
        return new

    def __ior__(self, other: Any) -> CaseInsensitiveDict[_VT]:  # type: ignore[misc,override]
        self.update(other)
        return self

    def __eq__(self, other: object) -> bool:
        if isinstance(other, CaseInsensitiveDict):
            return dict.__eq__(self, other)
        if isinstance(other, Mapping):
            return dict.__eq__(self, {_fold(k): v for k, v in other.items()})
        return NotImplemented

    def __ne__(self, other: object) -> bool:
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    __hash__ = None  # type: ignore[assignment]  # mutable, like dict

    def __repr__(self) -> str:
        return dict.__repr__(self)

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuilt through __init__, so the keys stay folded whatever the pickle protocol.
        return (type(self), (dict(self),))
