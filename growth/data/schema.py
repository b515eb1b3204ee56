"""The documented table format every part of the platform reads and writes.

A *dataset* is a folder of tables (one parquet or CSV file per table, named
``<table>.parquet`` or ``<table>.csv``).  The simulated world writes it, the
MovieLens adapter writes it, real data can be exported into it, and everything
downstream (predictors, decision problems, the nightly job) consumes only this
format.  ``growth.data.validation`` checks a table against its :class:`TableSchema`
and names the file, column and row at fault; the SQL store checks its result rows
with the same engine, against schemas it derives from its tables.

Domain feature columns are open-ended: any column of ``users`` whose name starts
with ``src_`` (the source domain, e.g. the payments app) or ``tgt_`` (the target
domain, e.g. the shop) is a feature of that domain.  Its kind is read from its
dtype: numeric (float/int, NaN means "missing"), or *multi-valued* when the name
ends with ``_tags`` or ``_seq`` (a ``|``-separated string of integer tokens,
``""`` when empty; ``_seq`` keeps order, oldest first).  The tokens of a
``_seq`` column are item categories (the items table's ``category``), so models
can match a user's sequence against a candidate item.  Heterogeneous domains
therefore need no special cases.

Values are bounded where the models and solvers need them to be: money (prices,
coupon values, order values, spend) at most :data:`MAX_MONEY`, counts at most
:data:`MAX_COUNT`, numeric features within :data:`MAX_FEATURE` in size, tokens and
categories at most :data:`MAX_TOKEN`.  A value beyond them is refused at the boundary
with its file, column and row, instead of overflowing float32 inside a model or a
solver.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal

ColumnKind = Literal["int", "float", "str", "bool", "datetime", "multi"]

SOURCE_PREFIX = "src_"
TARGET_PREFIX = "tgt_"
MULTI_SUFFIXES = ("_tags", "_seq")
MULTI_SEPARATOR = "|"

MAX_MONEY = 1e9
"""Largest price, coupon value, order value or daily spend, in currency units."""
MAX_COUNT = 10**9
"""Largest daily count (installs, logins, retained, pushes) and rank."""
MAX_FEATURE = 1e30
"""Largest size of a numeric feature: far inside float32 (3.4e38), so sums stay finite."""
MAX_TOKEN = 2**24 - 1
"""Largest token of a multi-valued column or item category: float32 holds it exactly."""


class Lifecycle(StrEnum):
    """Lifecycle segment of a user in the target domain (the shop)."""

    POTENTIAL = "potential"  # has not installed the target app
    NEW = "new"  # installed, no behaviour yet
    ACTIVE = "active"  # rich, recent behaviour (a.k.a. mature)
    LOST = "lost"  # stale behaviour (a.k.a. churned)


LIFECYCLES: tuple[str, ...] = tuple(s.value for s in Lifecycle)


class CouponType(StrEnum):
    """Kinds of coupon option; ``none`` is the control (no coupon)."""

    NONE = "none"
    RED_PACKET = "red_packet"  # no-threshold: ``face_value`` off any order
    FULL_REDUCTION = "full_reduction"  # ``face_value`` off when the basket reaches ``threshold``
    MERCHANT = "merchant"  # ``face_value`` off, only on ``merchant_id``'s items; merchant pays


COUPON_TYPES: tuple[str, ...] = tuple(t.value for t in CouponType)
NO_COUPON = "none"  # option_id of the control option, always present

DOMAINS: tuple[str, ...] = ("source", "target")
MAX_SCENE_LENGTH = 32
"""Most characters of a scene name (``exposures.scene``; a SQL ``VARCHAR(32)`` in the store)."""


@dataclass(frozen=True)
class Column:
    """One column of a table.

    ``nullable`` allows NaN/None; ``min``/``max`` bound numeric values
    (inclusive); ``choices`` restricts string values; ``max_length`` bounds the
    characters of a string (a SQL ``VARCHAR(n)``); ``unique`` forbids duplicates;
    ``references`` names ``"table.column"`` every value must exist in.
    """

    name: str
    kind: ColumnKind
    nullable: bool = False
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] | None = None
    max_length: int | None = None
    unique: bool = False
    references: str | None = None
    doc: str = ""


@dataclass(frozen=True)
class TableSchema:
    """A table: its required and optional columns, and how strictly rows are read.

    ``feature_prefixes`` (users only) admits the open-ended ``src_*``/``tgt_*``
    feature columns; ``required`` says whether a dataset must contain the table.
    Tables read from files keep the defaults: columns the schema does not name pass
    through, and text is parsed (numbers, ``true``/``false``, ISO datetimes; ``""`` is
    missing).  ``closed`` refuses columns the schema does not name; ``typed`` says the
    values come typed from Python code rather than as text, so text is never parsed
    into a number or a bool, and a bool where a number belongs is refused as a mistake
    (the SQL store's result rows are both).
    """

    name: str
    columns: tuple[Column, ...]
    doc: str = ""
    feature_prefixes: tuple[str, ...] = ()
    required: bool = True
    optional_columns: tuple[Column, ...] = field(default=())
    closed: bool = False
    typed: bool = False

    def column(self, name: str) -> Column:
        for col in (*self.columns, *self.optional_columns):
            if col.name == name:
                return col
        raise KeyError(f"table {self.name!r} has no column {name!r}")

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)


USERS = TableSchema(
    name="users",
    doc="One row per user: demographics, target-domain lifecycle, per-domain features.",
    columns=(
        Column("user_id", "int", min=0, unique=True, doc="stable user key"),
        Column("region", "str", doc="coarse region label"),
        Column("age_band", "str", doc="age band label, e.g. '25-34'"),
        Column("gender", "str", choices=("F", "M", "U")),
        Column("lifecycle", "str", choices=LIFECYCLES, doc="target-domain lifecycle segment"),
        Column("has_source", "bool", doc="whether the user has source-domain features"),
    ),
    feature_prefixes=(SOURCE_PREFIX, TARGET_PREFIX),
)

ITEMS = TableSchema(
    name="items",
    doc="One row per item of either domain.",
    columns=(
        Column("item_id", "int", min=0, unique=True),
        Column("domain", "str", choices=DOMAINS),
        Column(
            "category",
            "int",
            min=0,
            max=MAX_TOKEN,
            doc="category token, shared with the users' *_seq tokens",
        ),
    ),
    optional_columns=(
        Column("price", "float", min=0.0, max=MAX_MONEY, doc="list price in currency units"),
        Column("price_level", "int", min=0, max=MAX_TOKEN),
        Column("merchant_id", "int", min=0, nullable=True),
        Column("brand_tier", "int", min=0, max=MAX_TOKEN),
        Column(
            "sales_bucket", "int", min=0, max=MAX_TOKEN, doc="historical-sales bucket, 0 = lowest"
        ),
    ),
)

COUPONS = TableSchema(
    name="coupons",
    doc="Catalogue of coupon options; the option 'none' (type 'none') must be present.",
    columns=(
        Column("option_id", "str", unique=True),
        Column("type", "str", choices=COUPON_TYPES),
        Column("face_value", "float", min=0.0, max=MAX_MONEY, doc="currency units off the order"),
        Column(
            "threshold",
            "float",
            min=0.0,
            max=MAX_MONEY,
            doc="basket needed (full_reduction), else 0",
        ),
        Column("merchant_id", "int", min=0, nullable=True, doc="merchant coupons only"),
    ),
)

CANDIDATES = TableSchema(
    name="candidates",
    doc="The items the target app will show each user during the campaign (its feed).",
    columns=(
        Column("user_id", "int", references="users.user_id"),
        Column("item_id", "int", references="items.item_id"),
        Column("rank", "int", min=0, max=MAX_COUNT),
    ),
)

MIN_PROPENSITY = 1e-6
"""The smallest logged propensity accepted: below it one row would outweigh a million."""

EXPOSURES = TableSchema(
    name="exposures",
    doc=(
        "Impressions with a randomly assigned coupon treatment (a randomised-trial log) "
        "and the sampled conversion label."
    ),
    columns=(
        Column("user_id", "int", references="users.user_id"),
        Column("item_id", "int", references="items.item_id"),
        Column("domain", "str", choices=DOMAINS),
        Column("timestamp", "datetime"),
        Column("treatment", "str", references="coupons.option_id"),
        Column("label", "int", min=0, max=1),
    ),
    optional_columns=(
        Column(
            "scene",
            "str",
            max_length=MAX_SCENE_LENGTH,
            doc=(
                "where in its domain's app the impression was shown, e.g. 'home_feed', "
                "'search', 'coupon_centre' (target) or 'offers' (source); absent: every row "
                "is in its domain's one scene, named after the domain ('source'/'target')"
            ),
        ),
        Column("order_value", "float", min=0.0, max=MAX_MONEY, nullable=True),
        Column(
            "propensity",
            "float",
            min=MIN_PROPENSITY,
            max=1.0,
            doc=(
                "probability the design gave the row its treatment (absent: every option "
                "equally likely, 1 / options); off-policy estimates weigh a row by its inverse"
            ),
        ),
    ),
)

PUSH_MESSAGES = TableSchema(
    name="push_messages",
    required=False,
    doc="Push message catalogue.",
    columns=(
        Column("message_id", "int", min=0, unique=True),
        Column("industry", "str"),
        Column("item_id", "int", nullable=True, references="items.item_id"),
    ),
)

PUSH_CANDIDATES = TableSchema(
    name="push_candidates",
    required=False,
    doc="Each user's candidate push messages with the recommender's relevance score.",
    columns=(
        Column("user_id", "int", references="users.user_id"),
        Column("message_id", "int", references="push_messages.message_id"),
        Column(
            "relevance",
            "float",
            min=-MAX_FEATURE,
            max=MAX_FEATURE,
            doc="recommender score, higher = more relevant",
        ),
    ),
)

PUSH_LOG = TableSchema(
    name="push_log",
    required=False,
    doc="Randomly timed pushes: hour sent, pushes the user had already received that day, opened.",
    columns=(
        Column("user_id", "int", references="users.user_id"),
        Column("message_id", "int", references="push_messages.message_id"),
        Column("timestamp", "datetime"),
        Column("hour", "int", min=0, max=23),
        Column("prior_pushes_today", "int", min=0, max=MAX_COUNT),
        Column("opened", "int", min=0, max=1),
    ),
)

CHANNELS = TableSchema(
    name="channels",
    required=False,
    doc="Acquisition channels.",
    columns=(
        Column("channel_id", "int", min=0, unique=True),
        Column("name", "str", unique=True),
        Column("kind", "str", choices=("app_store", "ad_network", "device_maker")),
    ),
)

CHANNEL_HISTORY = TableSchema(
    name="channel_history",
    required=False,
    doc="Daily history per channel: spend and the funnel it bought.",
    columns=(
        Column("date", "datetime"),
        Column("channel_id", "int", references="channels.channel_id"),
        Column("spend", "float", min=0.0, max=MAX_MONEY),
        Column("installs", "int", min=0, max=MAX_COUNT),
        Column("logins", "int", min=0, max=MAX_COUNT),
        Column("retained", "int", min=0, max=MAX_COUNT, doc="users active the day after install"),
    ),
)

TABLES: dict[str, TableSchema] = {
    t.name: t
    for t in (
        USERS,
        ITEMS,
        COUPONS,
        CANDIDATES,
        EXPOSURES,
        PUSH_MESSAGES,
        PUSH_CANDIDATES,
        PUSH_LOG,
        CHANNELS,
        CHANNEL_HISTORY,
    )
}
"""All tables of a dataset, in dependency order (referenced tables first)."""
