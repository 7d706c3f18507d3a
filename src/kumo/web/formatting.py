"""Small presentation helpers the templates use as filters (no logic of the APIs here)."""

from __future__ import annotations

import datetime as dt
from typing import Any


def parse_time(value: str | None) -> dt.datetime | None:
    """An API timestamp (ISO 8601, ``Z`` or an offset, or naive UTC) as an aware datetime."""
    if not value:
        return None
    try:
        found = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return found if found.tzinfo else found.replace(tzinfo=dt.UTC)


def age(value: str | None, now: dt.datetime | None = None) -> str:
    """How long ago, in the largest whole unit: ``45s``, ``12m``, ``3h``, ``20d``."""
    when = parse_time(value)
    if when is None:
        return ""
    seconds = max(0, int(((now or dt.datetime.now(dt.UTC)) - when).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def addresses(value: Any) -> list[tuple[str, list[str]]]:
    """A server's ``addresses`` as (network, ["10.0.0.5", "172.24.4.9 (floating)"])."""
    if not isinstance(value, dict):
        return []
    result = []
    for network, entries in sorted(value.items()):
        shown = []
        for entry in entries or []:
            addr = str(entry.get("addr", ""))
            if entry.get("OS-EXT-IPS:type") == "floating":
                addr += " (floating)"
            shown.append(addr)
        result.append((str(network), shown))
    return result


def size(value: Any) -> str:
    """A byte count in binary units, as people read them: ``512 B``, ``13.0 MiB``."""
    if not isinstance(value, int) or isinstance(value, bool):
        return ""
    amount = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if amount < 1024 or unit == "TiB":
            return f"{value} B" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    return ""  # unreachable: TiB ends the loop
