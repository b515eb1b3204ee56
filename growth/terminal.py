r"""What the command line prints: data as text, never as markup, passwords hidden.

Values from data and databases (a lifecycle ``[/x]``, an operator with escape codes,
a driver's message quoting a URL) reach the terminal through :func:`printable`:
both consoles parse no markup, control characters are shown escaped and database
passwords hidden (:func:`growth.store.engine.redact`).

>>> printable("[/x] \x1b[31mred")
'[/x] \\x1b[31mred'
"""

from __future__ import annotations

import logging
import unicodedata
from typing import Any

import pandas as pd
import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.table import Table
from rich.text import Text

from growth.store.engine import redact

console = Console(markup=False)
err_console = Console(stderr=True, markup=False)
"""Data reaches the terminal as text: never parsed as markup (:func:`printable` too)."""


def printable(value: object, *, newlines: bool = False) -> str:
    """``value`` as text safe for a terminal: database passwords hidden, control
    characters (escape sequences, bidirectional overrides) shown as ``\\x1b``-style
    escapes; ``newlines`` keeps line breaks and tabs (messages), else they are escaped
    too (table cells)."""
    keep = "\n\t" if newlines else ""
    out = []
    for ch in redact(str(value)):
        if ch not in keep and (unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Zl", "Zp")):
            out.append(ch.encode("unicode_escape").decode("ascii"))
        else:
            out.append(ch)
    return "".join(out)


class SafeRichHandler(RichHandler):
    """Log records as text: passwords hidden, control characters escaped, no markup."""

    def render_message(self, record: logging.LogRecord, message: str) -> Any:
        return super().render_message(record, printable(message, newlines=True))


def setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(name)s: %(message)s",
        handlers=[
            SafeRichHandler(
                console=err_console, show_path=False, rich_tracebacks=False, markup=False
            )
        ],
        force=True,
    )


def fmt(value: object) -> str:
    """Numbers for people: thousands separators for large ones, 4 significant digits
    otherwise; anything else as printable text."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return printable(value)
    if isinstance(value, int) or (abs(value) >= 1000 and float(value).is_integer()):
        return f"{value:,.0f}"
    if abs(value) >= 1000:
        return f"{value:,.1f}"
    return f"{value:.4g}"


def frame_table(frame: pd.DataFrame, title: str) -> Table:
    table = Table(title=Text(printable(title)), title_justify="left")
    for col in frame.columns:
        justify = "right" if frame[col].dtype.kind in "fiu" else "left"
        table.add_column(Text(printable(col)), justify=justify)
    for _, row in frame.iterrows():
        table.add_row(*(Text(fmt(v.item() if hasattr(v, "item") else v)) for v in row.to_numpy()))
    return table


def fail(message: str, code: int) -> typer.Exit:
    """Say ``message`` (as text, passwords hidden) on stderr; the exit to raise."""
    text = Text.assemble(("error:", "bold red"), " ", printable(message, newlines=True))
    err_console.print(text, soft_wrap=True)
    return typer.Exit(code)


def print_summary(result) -> None:
    """The nightly job's summary tables."""
    seg = result.segments.rename("users").reset_index()
    seg.columns = ["segment", "users"]
    console.print(frame_table(seg, "Users per lifecycle segment"))
    m = result.metrics.pivot_table(index=["model", "segment"], columns="metric", values="value")
    m = m.reindex(columns=["auc", "logloss", "ece", "qini", "positive_rate", "n"]).reset_index()
    console.print(
        frame_table(m, f"Conversion model ({result.predictor}) on the newest exposures")
        if m["model"].nunique() == 1
        else frame_table(
            m, f"Conversion models on the newest exposures (chosen: {result.predictor})"
        )
    )
    plan = result.plan
    budgets = pd.DataFrame(
        {
            "budget": pd.Series(plan.budgets),
            "expected_spend": pd.Series(plan.spend),
        }
    )
    budgets["used_%"] = (
        100 * budgets["expected_spend"] / budgets["budget"].where(budgets["budget"] > 0)
    )
    console.print(
        frame_table(budgets.reset_index(names="budget_group"), "Coupon spend versus budget")
    )
    a = plan.allocation
    console.print(
        f"coupon plan: {int((plan.choice >= 0).sum()):,} users get a coupon; expected incremental "
        f"conversions {a.objective:,.2f} (upper bound {a.upper_bound:,.2f}, gap {a.gap:.3%}, "
        f"{a.method}, {a.solve_time_s:.2f} s)"
    )
    if result.truth is not None:
        print_coupon_truth(console, result.truth)
    if result.push is not None:
        sched = result.push.schedule
        console.print(
            f"push schedule: {len(sched.pushes):,} pushes to {len(result.push.audience.user_ids):,} "
            f"users; expected opens {sched.objective:,.1f} (upper bound {sched.upper_bound:,.1f}, "
            f"gap {sched.gap:.3%}, {sched.method}, {sched.solve_time_s:.1f} s); open model AUC "
            f"{result.push.open_model_auc:.3f}, fatigue decay {result.push.decay:.2f}"
        )
        quality = result.push.open_model_summary()
        if quality:
            segments = ", ".join(f"{r['group']} {r['auc']:.3f}" for r in quality["by_segment"])
            hours = quality["by_hour"]
            worst = max(hours, key=lambda r: abs(r["positive_rate"] - r["mean_predicted"]))
            console.print(
                f"open model on held-out pushes: AUC by segment {segments}; largest hourly "
                f"calibration gap at {worst['group']}h (observed {worst['positive_rate']:.3f}, "
                f"predicted {worst['mean_predicted']:.3f})"
            )
        if result.push_truth is not None:
            t = result.push_truth
            console.print(
                f"push scored by the truth: {t['platform']:,.1f} expected opens vs the oracle's "
                f"{t['oracle']:,.1f} ({t['platform'] / max(t['oracle'], 1e-9):.1%})"
            )
    if result.install is not None:
        p = result.install.split
        totals = p.totals
        console.print(
            f"install control: {totals['spend']:,.0f} spent for {totals['installs']:,.0f} installs, "
            f"{totals['logins']:,.0f} logins, {totals['retained']:,.0f} retained (max "
            f"{p.objective_name}, bound {p.upper_bound:,.1f}, gap {p.gap:.3%}); Pareto front of "
            f"{len(result.install.front)} points"
        )
        if result.install_truth is not None:
            console.print(
                frame_table(result.install_truth.reset_index(), "Install plans on the true curves")
            )
    timings = pd.DataFrame(
        {"stage": list(result.timings), "seconds": list(result.timings.values())}
    )
    console.print(frame_table(timings, "Stage timings"))
    console.print(Text(f"run {result.run_id} stored", style="green"))


def print_coupon_truth(console: Console, score) -> None:
    """The plans played out on the truth (a
    :class:`~growth.campaigns.coupons.CouponTruthScore`), the platform plan's spend per
    budget group, and its % of the oracle at the same budgets."""
    plans = score.plans.drop(columns="incremental_gmv").reset_index()
    console.print(frame_table(plans, "Plans scored by the world's ground truth"))
    console.print(
        f"each plan played out over {len(score.seeds)} random arrival orders, coupons honoured "
        f"while every budget they draw on can pay (means, sd over the orders); best single "
        f"option for everyone: {score.best_single_option}"
    )
    spend = score.spend.query("plan == 'platform'").drop(columns="plan")
    console.print(frame_table(spend, "Platform plan's spend on the truth per budget group (means)"))
    p = score.plans.loc["platform"]
    old = p["all_paid_conversions"] / max(score.plans.loc["oracle", "all_paid_conversions"], 1e-9)
    console.print(
        f"platform plan reaches {p['pct_of_oracle']:.1f} % (sd {p['pct_of_oracle_sd']:.1f}) of "
        f"the oracle's incremental conversions at the same budgets, coupons honoured until each "
        f"budget runs out ({old:.1%} if every redemption were paid)"
    )
