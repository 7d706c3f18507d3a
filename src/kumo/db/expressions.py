"""SQL expressions SQLAlchemy has no portable form for, compiled for each backend, so core
can aggregate in the database (the metrics scrape sums thousands of rows) instead of
reading every row into Python."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Float
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import QueryableAttribute
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement


class seconds_between(FunctionElement[float]):  # a SQL function, named as one
    """``seconds_between(start, end)``: seconds from one UTCDateTime column to another, as
    a float (NULL when either is NULL)."""

    type = Float()
    inherit_cache = True
    name = "seconds_between"

    def __init__(
        self,
        start: ColumnElement[Any] | QueryableAttribute[Any],
        end: ColumnElement[Any] | QueryableAttribute[Any],
    ) -> None:
        super().__init__(start, end)


def _args(element: seconds_between, compiler: SQLCompiler, **kw: Any) -> tuple[str, str]:
    start, end = element.clauses
    return compiler.process(start, **kw), compiler.process(end, **kw)


@compiles(seconds_between, "sqlite")
def _sqlite(element: seconds_between, compiler: SQLCompiler, **kw: Any) -> str:
    # SQLite keeps timestamps as ISO text, 'YYYY-MM-DD HH:MM:SS.ffffff' as SQLAlchemy writes
    # them: whole epoch seconds from strftime plus the microseconds read off the text, exact
    # (julianday()'s floating days were off by up to a millisecond, and usage reports sum
    # thousands of intervals that must add up to the second).
    start, end = _args(element, compiler, **kw)
    return f"({_sqlite_epoch(end)} - {_sqlite_epoch(start)})"


def _sqlite_epoch(value: str) -> str:
    return (
        f"(CAST(strftime('%s', {value}) AS INTEGER)"
        f" + CAST(substr({value}, 21, 6) AS INTEGER) / 1000000.0)"
    )


@compiles(seconds_between, "postgresql")
def _postgresql(element: seconds_between, compiler: SQLCompiler, **kw: Any) -> str:
    start, end = _args(element, compiler, **kw)
    return f"EXTRACT(EPOCH FROM ({end} - {start}))"


@compiles(seconds_between, "mysql")
@compiles(seconds_between, "mariadb")
def _mysql(element: seconds_between, compiler: SQLCompiler, **kw: Any) -> str:
    start, end = _args(element, compiler, **kw)
    return f"(TIMESTAMPDIFF(MICROSECOND, {start}, {end}) / 1000000.0)"
