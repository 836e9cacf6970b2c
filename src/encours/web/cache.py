"""The in-process caches of the web pages: a value built once per key (portfolio of a day
and ledger version, worklist predictions, risk tiles, scorecards), the least recently used
ones dropped beyond `size`. Concurrent requests for a missing key wait for ONE build."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any


class BuildCache:
    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()
        self._building: dict[Hashable, threading.Lock] = {}

    def get(self, key: Hashable) -> Any | None:
        with self._lock:
            if key not in self._items:
                return None
            self._items.move_to_end(key)
            return self._items[key]

    def latest(self, match: Callable[[Any], bool]) -> Any | None:
        """The most recently stored value whose key satisfies `match` (None: none)."""
        with self._lock:
            return next((v for k, v in reversed(self._items.items()) if match(k)), None)

    def get_or_build(self, key: Hashable, build: Callable[[], Any]) -> Any:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
            build_lock = self._building.setdefault(key, threading.Lock())
        with build_lock:  # one build per key: concurrent requests wait for it
            with self._lock:
                if key in self._items:
                    return self._items[key]
            value = build()
            with self._lock:
                self._items[key] = value
                self._building.pop(key, None)
                while len(self._items) > self.size:
                    self._items.popitem(last=False)
        return value

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


__all__ = ["BuildCache"]
