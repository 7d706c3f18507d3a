"""The usage ledger's one clock (naive UTC): the recorder (kumo.core.usage_ledger) stamps
intervals with it, and reports (kumo.core.usage_report) count an open interval up to it.

A module of its own so that a report needs neither the recorder nor the ORM models it
watches (`kumo usage report` maps none of them: bench/README.md, "usage_report.py").
Tests replace ``clock`` (monkeypatch) to advance time step by step.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from kumo.db.types import utcnow

clock: Callable[[], dt.datetime] = utcnow
