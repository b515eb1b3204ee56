"""The experiment format: a randomised campaign log and its arms table.

An *experiment* is a folder of two tables, each a ``.parquet`` or ``.csv`` file:

``log`` (one row per user of a randomised campaign)
    ``user_id`` (text, unique), ``arm`` (the arm the user received, an ``arm`` of the
    arms table), ``conversion`` (0/1), optionally ``propensity`` (the probability the
    design gave this user this arm, in (0, 1]; omit it when the design's constant is
    given once per arm in the arms table), ``revenue`` (>= 0, 0 without a
    conversion) and ``visits`` (>= 0).  Every other column is a feature: numeric
    columns are numeric features (empty = missing), text columns are categorical
    (write integer codes as text, e.g. ``"c3"``, to have them read as categories).

``arms`` (one row per arm)
    ``arm`` (text, unique), ``control`` (true for exactly one arm: what a user gets
    when the plan gives nothing; it costs nothing), and optionally
    ``cost_per_conversion`` and ``cost_per_treatment`` (>= 0, currency units; empty
    = 0), ``budget`` (the most this arm may spend, empty = no own limit) and
    ``propensity`` (the design's constant share of users given the arm, summing to 1).

A plan's expected cost of giving a user arm ``k`` is
``p(conversion | arm k) * cost_per_conversion[k] + cost_per_treatment[k]``.
The cross-table rules (every logged arm is in the arms table, one control, a
propensity for every row, enough rows and conversions per arm) are checked by
:func:`growth.experiments.log.validate_experiment`, with the same error format as
every dataset (:class:`~growth.data.table_check.DataValidationError`).
"""

from __future__ import annotations

from growth.data.schema import MAX_COUNT, MAX_MONEY, Column, TableSchema

ID_LENGTH = 128
"""Longest ``user_id`` or ``arm`` (characters): what the SQL store keeps."""

LOG = TableSchema(
    name="log",
    doc="One row per user of a randomised campaign: features, the arm received, outcomes.",
    columns=(
        Column("user_id", "str", unique=True, max_length=ID_LENGTH, doc="user key"),
        Column("arm", "str", max_length=ID_LENGTH, doc="arm received (arms.arm)"),
        Column("conversion", "int", min=0, max=1, doc="1 if the user converted"),
    ),
    optional_columns=(
        Column("propensity", "float", min=0.0, max=1.0, doc="P(this arm | user), in (0, 1]"),
        Column("revenue", "float", min=0.0, max=MAX_MONEY, doc="revenue, 0 without conversion"),
        Column("visits", "float", min=0.0, max=MAX_COUNT, doc="visits during the campaign"),
    ),
)

ARMS = TableSchema(
    name="arms",
    doc="One row per arm: its costs, budget and design propensity; one arm is the control.",
    columns=(
        Column("arm", "str", unique=True, max_length=ID_LENGTH),
        Column("control", "bool", doc="the arm a user gets when the plan gives nothing"),
    ),
    optional_columns=(
        Column("cost_per_conversion", "float", nullable=True, min=0.0, max=MAX_MONEY),
        Column("cost_per_treatment", "float", nullable=True, min=0.0, max=MAX_MONEY),
        Column("budget", "float", nullable=True, min=0.0, max=MAX_MONEY),
        Column("propensity", "float", nullable=True, min=0.0, max=1.0),
    ),
    closed=True,
)

OUTCOMES: tuple[str, ...] = ("conversion", "revenue", "visits")
"""Outcome columns of the log; a plan maximises one of them (conversion by default)."""

RESERVED: frozenset[str] = frozenset(c.name for c in (*LOG.columns, *LOG.optional_columns))
"""Log columns that are not features."""

TABLES: dict[str, TableSchema] = {"log": LOG, "arms": ARMS}
"""The experiment's tables by name (the file stem)."""
