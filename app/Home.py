"""Operators' app: home page (start it with ``growth app`` or ``streamlit run app/Home.py``)."""

from __future__ import annotations

import streamlit as st

from app import ui

st.set_page_config(page_title="Growth platform", layout="wide")
ctx = ui.sidebar()
w = ui.world(ctx.scenario, ctx.n_users)

st.title("Growth decision platform")
st.write(
    "Plan campaigns on the simulated world (or your configured data): "
    "**Install control** splits the acquisition budget across channels, **Coupons** "
    "allocates coupons under budgets, **Push** schedules the day's pushes, **Models** "
    "shows how good the predictors are, and **Runs** keeps every saved plan."
)
ds = w.dataset
cols = st.columns(4)
cols[0].metric("Users", f"{len(ds.users):,}")
cols[1].metric("Items", f"{len(ds.items):,}")
cols[2].metric("Coupon options", f"{len(ds.coupons):,}")
cols[3].metric("Channels", f"{len(ds.channels) if ds.channels is not None else 0}")
st.subheader("Users by lifecycle segment")
st.bar_chart(ds.users["lifecycle"].value_counts().sort_index())
st.subheader("Latest runs")
runs = ui.store().runs(limit=10)
if runs.empty:
    st.info("No runs yet: solve a plan on one of the pages and save it.")
else:
    st.dataframe(
        runs[["run_id", "kind", "status", "operator", "started_at", "duration_s"]],
        hide_index=True,
    )
