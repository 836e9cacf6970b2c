"""The customer page's scorecard (whole-portfolio computation) is never recomputed in the
request after a change: the previous one is served while a thread computes the new one."""

from __future__ import annotations

import time

from sqlalchemy import insert

from conftest import AS_OF
from encours.store.db import unit_of_work
from encours.store.schema import AuditEntry, _now
from encours.web.pages import customer_actions


def test_stale_scorecard_served_while_refreshing(web_db_url: str) -> None:
    customer_actions._SCORED.clear()
    first = customer_actions._scored(web_db_url, AS_OF)  # cold: computed in the request
    assert customer_actions._scored(web_db_url, AS_OF) is first  # cached
    with unit_of_work(web_db_url) as conn:  # any audited action: a new ledger version
        conn.execute(insert(AuditEntry.__table__).values(
            at=_now(), actor="test", action="test", entity="test", entity_key="x"))  # fmt: skip
    served = customer_actions._scored(web_db_url, AS_OF)
    assert served is first  # the previous scorecard, at once
    deadline = time.monotonic() + 60
    while customer_actions._REFRESHING and time.monotonic() < deadline:
        time.sleep(0.05)
    fresh = customer_actions._scored(web_db_url, AS_OF)
    assert fresh is not first and fresh.equals(first)  # recomputed, same data
