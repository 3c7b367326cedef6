"""Date arithmetic in SQL that both databases understand. SQLAlchemy has no portable way to
subtract timestamps, and SQLite stores them as text: `julianday` there, `EXTRACT(EPOCH …)`
on PostgreSQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Float
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement


class days_between(FunctionElement[float]):  # lower case: it reads as the SQL it stands for
    """`later - earlier` in days, fractions included (NULL if either is NULL)."""

    type = Float()
    inherit_cache = True
    name = "days_between"


def _parts(element: days_between, compiler: SQLCompiler, **kw: Any) -> tuple[str, str]:
    later, earlier = list(element.clauses)
    return compiler.process(later, **kw), compiler.process(earlier, **kw)


@compiles(days_between, "sqlite")
def _sqlite(element: days_between, compiler: SQLCompiler, **kw: Any) -> str:
    later, earlier = _parts(element, compiler, **kw)
    return f"(julianday({later}) - julianday({earlier}))"


@compiles(days_between, "postgresql")
def _postgresql(element: days_between, compiler: SQLCompiler, **kw: Any) -> str:
    later, earlier = _parts(element, compiler, **kw)
    return f"(EXTRACT(EPOCH FROM ({later} - {earlier})) / 86400.0)"
