"""Case-insensitive mapping used for response headers.

HTTP header names are case-insensitive, so lookups must be too. Keys are stored and
iterated lower-cased because acurl did that: code doing ``dict(r.headers)`` or
``"content-type" in r.headers.keys()`` keeps working.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, MutableMapping
from typing import Any, TypeVar

__all__ = ["CaseInsensitiveDict"]

_VT = TypeVar("_VT")


def _fold(key: Any) -> Any:
    return key.lower() if isinstance(key, str) else key


class CaseInsensitiveDict(MutableMapping[str, _VT]):
    """A dict whose str keys match regardless of case; keys are kept lower-cased.

    ``popitem`` removes the last item, as ``dict.popitem`` (and acurl's dict subclass) did.
    """

    __slots__ = ("_store",)

    def __init__(
        self,
        data: Mapping[str, _VT] | Iterable[tuple[str, _VT]] | None = None,
        **kwargs: _VT,
    ) -> None:
        self._store: dict[str, _VT] = {}
        if data is not None:
            self.update(data)
        if kwargs:
            self.update(kwargs)

    def __getitem__(self, key: str) -> _VT:
        return self._store[_fold(key)]

    def __setitem__(self, key: str, value: _VT) -> None:
        self._store[_fold(key)] = value

    def __delitem__(self, key: str) -> None:
        del self._store[_fold(key)]

    def __contains__(self, key: object) -> bool:
        return _fold(key) in self._store

    def __iter__(self) -> Iterator[str]:
        return iter(self._store)

    def __len__(self) -> int:
        return len(self._store)

    def get(self, key: str, default: Any = None) -> Any:
        """Case-insensitive ``dict.get`` (overridden only to skip the try/except of Mapping)."""
        return self._store.get(_fold(key), default)

    def popitem(self) -> tuple[str, _VT]:
        """Remove and return the last (key, value) pair, like ``dict.popitem``."""
        return self._store.popitem()

    def lower_items(self) -> Iterator[tuple[str, _VT]]:
        """(lower-cased key, value) pairs: ``items()`` here, kept for parity with requests."""
        return iter(self._store.items())

    def copy(self) -> CaseInsensitiveDict[_VT]:
        """A shallow copy that is still case-insensitive (``dict(self)`` would not be)."""
        new: CaseInsensitiveDict[_VT] = CaseInsensitiveDict()
        new._store = self._store.copy()
        return new

    def __eq__(self, other: object) -> bool:
        if isinstance(other, CaseInsensitiveDict):
            return self._store == other._store
        if isinstance(other, Mapping):
            return self._store == {_fold(k): v for k, v in other.items()}
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable, like dict

    def __repr__(self) -> str:
        return repr(self._store)
