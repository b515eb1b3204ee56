"""Shared pieces of the operators' app: cached services, the sidebar, small widgets.

Everything computed here comes from :mod:`growth.services`; this module only
adds Streamlit caching (keyed by scenario, users and seed) and layout helpers.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import streamlit as st

from growth import services as svc

OPERATOR_KEY = "operator_name"


@dataclass(frozen=True)
class Context:
    """What the sidebar selected: the scenario and its size (``n_users`` None = as the file says)."""

    scenario: str
    n_users: int | None


@st.cache_resource(show_spinner="Generating the simulated world ...")
def world(scenario: str, n_users: int | None) -> svc.World:
    """The scenario's world, generated once per (scenario, users)."""
    return svc.load_world(scenario, n_users)


@st.cache_resource(show_spinner="Encoding users, items and coupons ...")
def features(scenario: str, n_users: int | None):
    """The world's feature encodings (no training), once per (scenario, users)."""
    return svc.conversion_features(world(scenario, n_users))


@st.cache_resource(show_spinner="Loading the nightly run's predictors (or training them) ...")
def predictors(scenario: str, n_users: int | None) -> svc.Predictors:
    """The conversion and basket models of the newest nightly run of this world, else trained
    with the nightly settings; once per (scenario, users), so widget changes never re-train."""
    return svc.load_predictors(
        world(scenario, n_users), store(), features=features(scenario, n_users)
    )


@st.cache_resource(show_spinner=False)
def decision(scenario: str, n_users: int | None) -> svc.CouponDecision:
    """Every user's predicted response to every coupon option (the run's, or scored once)."""
    return svc.score_coupons(predictors(scenario, n_users))


def provenance(pred: svc.Predictors) -> None:
    """Which model the page's predictions come from, and from which run."""
    st.caption(f"Predictions: **{pred.predictor}**, {pred.source}.")


@st.cache_data(show_spinner=False)
def segments(scenario: str, n_users: int | None) -> list[str]:
    """The world's lifecycle segments."""
    return svc.lifecycle_segments(features(scenario, n_users))


@st.cache_resource(show_spinner="Fitting channel response curves ...")
def channel_models(scenario: str, n_users: int | None):
    """Fitted Hill curves of the world's acquisition channels."""
    return svc.fit_channel_models(world(scenario, n_users).dataset)


@st.cache_resource
def _store(url: str):
    return svc.store(url)


def store():
    """The platform's store ($GROWTH_DB_URL or the embedded SQLite database), one per URL."""
    return _store(svc.store_url())


def sidebar() -> Context:
    """Scenario selector shown on every page."""
    names = svc.scenarios()
    st.sidebar.header("World")
    scenario = st.sidebar.selectbox("Scenario", names, key="scenario")
    n_users = svc.app_users()
    size = world(scenario, n_users).config.n_users
    st.sidebar.caption(f"{size:,} simulated users · store: {store()!r}")
    return Context(scenario=scenario, n_users=n_users)


def save_run_form(kind: str, key: str, config: dict, tables: dict, summary: dict) -> None:
    """Operator name + button that stores the current solve as a run."""
    with st.form(f"save_{key}"):
        name = st.text_input("Operator name", key=f"{OPERATOR_KEY}_{key}")
        if st.form_submit_button("Save as run"):
            try:
                run_id = svc.save_run(store(), kind, name, config, tables=tables, summary=summary)
            except ValueError as exc:
                st.error(str(exc))
            else:
                st.session_state[f"saved_{key}"] = run_id
    if f"saved_{key}" in st.session_state:
        st.success(f"Saved as run {st.session_state[f'saved_{key}']}")


def certificate(cert: dict) -> None:
    """The solver's certificate as metrics: objective, bound, gap, status, time."""
    cols = st.columns(5)
    cols[0].metric("Objective", f"{cert['objective']:,.2f}")
    cols[1].metric("Upper bound", f"{cert['upper_bound']:,.2f}")
    cols[2].metric("Gap", f"{cert['gap']:.2%}" if pd.notna(cert["gap"]) else "n/a")
    cols[3].metric("Status", str(cert["status"]))
    cols[4].metric("Solve time", f"{cert['solve_time_s']:.2f} s")
