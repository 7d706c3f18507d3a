"""/kumo/v1/usage: the usage ledger summed per project over a period, for billing systems
(the numbers ``kumo usage report`` prints). Admin only."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from kumo.api.auth import Caller, caller
from kumo.api.state import AppState, app_state
from kumo.core import usage_report
from kumo.core.policy import enforce

router = APIRouter(prefix="/kumo/v1")


@router.get("/usage")
def usage(
    request: Request, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> dict[str, Any]:
    """``?start=&end=[&project_id=]``: hours per dimension, and the cost when
    ``[usage.prices]`` sets prices. 400 for a missing, malformed or reversed period."""
    enforce(who.ctx, "kumo:usage")
    q = request.query_params
    start, end = usage_report.parse_period(q.get("start"), q.get("end"))
    with state.db.session() as session:
        found = usage_report.report(
            session,
            start,
            end,
            q.get("project_id") or None,
            state.config.usage.prices.as_prices(),
        )
    return {"usage": usage_report.as_dict(found)}
