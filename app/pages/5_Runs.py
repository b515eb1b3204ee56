"""Runs: history from SQL; open any run's plan and export it as CSV."""

from __future__ import annotations

import streamlit as st

from app import ui
from growth import services as svc

st.set_page_config(page_title="Runs", layout="wide")
ui.sidebar()
db = ui.store()

st.title("Runs")
limit = st.number_input("Show the latest", 1, 1000, 50, key="runs_limit")
runs = db.runs(limit=int(limit))
if runs.empty:
    st.info("No runs yet: save a solve from Install control, Coupons or Push.")
    st.stop()
st.dataframe(
    runs[["run_id", "kind", "status", "operator", "started_at", "duration_s", "error"]],
    hide_index=True,
)
run_id = st.selectbox("Open run", runs["run_id"].tolist(), key="open_run")
run = db.get_run(int(run_id))
cols = st.columns(2)
cols[0].markdown("**Config**")
cols[0].json(run["config"] or {})
cols[1].markdown("**Summary**")
cols[1].json(run["summary"] or {})
plans = svc.run_plan(db, int(run_id))
if not plans:
    st.info(f"Run {run_id} stored no plan rows.")
for name, frame in plans.items():
    st.markdown(f"**{name}** ({len(frame):,} rows)")
    st.dataframe(frame.head(1_000), hide_index=True)
    st.download_button(
        f"Download {name} as CSV",
        svc.to_csv(frame),
        file_name=f"run_{run_id}_{name}.csv",
        mime="text/csv",
        key=f"download_{name}",
    )
