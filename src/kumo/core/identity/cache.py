"""A per-process cache of validated tokens, trusted only at the identity revision it was
filled at (see kumo.db.revision)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kumo.core.identity.auth import ValidatedToken


class TokenCache:
    def __init__(self, max_entries: int = 10000) -> None:
        self._entries: OrderedDict[str, tuple[str, ValidatedToken]] = OrderedDict()
        self._max = max_entries
        self._lock = threading.Lock()

    def get(self, token: str, revision: str | None) -> ValidatedToken | None:
        if revision is None:
            return None
        with self._lock:
            entry = self._entries.get(token)
            if entry is None or entry[0] != revision:
                return None
            self._entries.move_to_end(token)
            return entry[1]

    def put(self, token: str, revision: str | None, value: ValidatedToken) -> None:
        if revision is None:
            return
        with self._lock:
            self._entries[token] = (revision, value)
            self._entries.move_to_end(token)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)
