"""The declarative base every table of kumo is declared on, and the column types they share.

Apart from kumo.db.models so that a table module can be imported without the rest: a class
declared on ``Base`` is mapped when its module is imported, and kumo.db.models maps every
class of the cloud (about 0.4 s of CPU), which `kumo usage report` does not need for the
one ledger table it reads (kumo.db.usage_tables; bench/README.md, "usage_report.py").
kumo.db.models re-exports these names, so ``models.Base`` is this one.
"""

from __future__ import annotations

from sqlalchemy import String
from sqlalchemy.orm import DeclarativeBase

ID = String(64)
NAME = String(255)


class Base(DeclarativeBase):
    pass
