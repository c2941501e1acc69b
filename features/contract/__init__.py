"""The data contract of the six source tables, and ``nba validate``.

The tables are declared in :mod:`features.tables`; :func:`validate_world` checks a
world folder against them and returns a :class:`Report` of every
:class:`Violation`. :func:`pandera_schema` gives the column contract of one table
as a pandera schema, for DataFrames already in memory.
"""

from features.contract.engine import validate_world
from features.contract.report import Report, Violation
from features.contract.schemas import pandera_schema

__all__ = ["Report", "Violation", "pandera_schema", "validate_world"]
