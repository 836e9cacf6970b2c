"""Trained late-payment models (`encours model train`), kept so that `predict`, the report
and the cash-in forecast work in a later process.

`artifact` holds the fitted estimators (pickled by encours itself: only load artifacts
this database's own `model train` wrote). `params` and `metrics` are JSON for display.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, Date, DateTime, Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from encours.store.schema import Base, _now


class PaymentModel(Base):
    __tablename__ = "payment_models"
    __table_args__ = (Index("ix_payment_models_as_of", "as_of"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    trained_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now)
    as_of: Mapped[dt.date] = mapped_column(Date)  # only what was known on that day was used
    kind: Mapped[str] = mapped_column(String(30))  # lightgbm | logistic
    params: Mapped[dict] = mapped_column(JSON)
    metrics: Mapped[dict] = mapped_column(JSON)
    artifact: Mapped[bytes] = mapped_column(LargeBinary)
