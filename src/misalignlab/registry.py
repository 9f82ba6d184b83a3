"""Explicit, named registries for pluggable components (losses, presets, detectors, strategies).

Duplicates raise, unknown names list the known ones, and tests can register fakes inside
``Registry.scoped()`` without leaking them into other tests.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """A mapping from names to components, filled by decorators at import time."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def add(item: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._items[name] = item
            return item

        return add

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            known = ", ".join(sorted(self._items)) or "none"
            raise ValueError(f"unknown {self.kind} {name!r}; known: {known}") from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    @contextmanager
    def scoped(self) -> Iterator[Registry[T]]:
        """Register temporary components; everything added inside is removed on exit."""
        saved = dict(self._items)
        try:
            yield self
        finally:
            self._items = saved
