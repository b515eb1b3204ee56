"""Push: schedule the day's pushes under fatigue caps, gaps, capacity and industry shares."""

from __future__ import annotations

import plotly.express as px
import streamlit as st

from app import ui
from growth import services as svc

st.set_page_config(page_title="Push", layout="wide")
ctx = ui.sidebar()
n_world = ui.world(ctx.scenario, ctx.n_users).config.n_users

st.title("Push")


@st.cache_resource(show_spinner=False)
def solve(scenario: str, n_users: int | None, settings_json: str):
    return svc.plan_push(
        ui.features(scenario, n_users),
        svc.PushSettings.model_validate_json(settings_json),
        seed=ui.world(scenario, n_users).config.seed,
    )


cols = st.columns(3)
fatigue_cap = cols[0].number_input("Pushes per user per day (cap)", 0, 10, 2, key="fatigue_cap")
min_gap = cols[0].number_input("Minimum gap between pushes (hours)", 1, 12, 3, key="min_gap")
capacity = cols[1].slider("Hourly capacity (share of audience)", 0.01, 0.5, 0.08, key="capacity")
share = cols[1].slider("Minimum share per industry", 0.0, 0.2, 0.05, 0.01, key="industry_share")
max_users = cols[2].number_input(
    "Audience cap (users)", 10, max(n_world, 10), min(2_000, n_world), key="max_users"
)
time_limit = cols[2].number_input("Time limit (s)", 1.0, 600.0, 30.0, key="push_time_limit")
settings = svc.PushSettings(
    fatigue_cap=fatigue_cap,
    min_gap=min_gap,
    capacity_share=capacity,
    industry_min_share=share,
    max_users=max_users,
    time_limit_s=time_limit,
)

if st.button("Solve", type="primary", key="push_solve"):
    with st.status("Fitting the open model and scheduling ...", expanded=False) as status:
        try:
            plan = solve(ctx.scenario, ctx.n_users, settings.model_dump_json())
        except ValueError as exc:
            status.update(label="Failed", state="error")
            st.error(f"Cannot schedule: {exc}")
        else:
            status.update(label="Scheduled", state="complete")
            st.session_state["push_result"] = (settings, plan)
            st.session_state.pop("saved_push", None)

if "push_result" in st.session_state:
    used, plan = st.session_state["push_result"]
    ui.certificate(plan.schedule.certificate_dict())
    st.caption(
        f"{len(plan.schedule.pushes):,} pushes to {len(plan.audience.user_ids):,} users; "
        f"open model AUC {plan.open_model_auc:.3f}; fatigue decay {plan.decay:.2f}"
    )
    st.subheader("Schedule: pushes by hour and industry")
    heat = svc.push_heatmap(plan)
    st.plotly_chart(
        px.imshow(heat.T, aspect="auto", labels={"x": "hour", "y": "industry", "color": "pushes"}),
        key="push_heatmap",
    )
    st.subheader("Open model on held-out pushes")
    st.caption(
        "The newest pushes of the log, scored by the model fitted on the older ones (features "
        "from the older log only): ranking (AUC) and calibration, observed open rate against "
        "the mean prediction."
    )
    by_hour = svc.open_model_quality(plan, "hour")
    if len(by_hour):
        cols = st.columns(2)
        cols[0].plotly_chart(
            px.line(by_hour, x="hour", y="auc", markers=True, title="AUC by hour"),
            key="open_auc_by_hour",
        )
        cols[1].plotly_chart(
            px.line(
                by_hour,
                x="hour",
                y=["positive_rate", "mean_predicted"],
                markers=True,
                title="Observed vs predicted open rate by hour",
            ),
            key="open_calibration_by_hour",
        )
        st.dataframe(svc.open_model_quality(plan, "segment"), hide_index=True)
    st.subheader("Fatigue: users by pushes received")
    stats = svc.fatigue_stats(plan)
    st.plotly_chart(px.bar(stats, x="pushes", y="users"), key="fatigue_chart")
    ui.save_run_form(
        "push",
        "push",
        {"push": used.model_dump()},
        {"push_schedules": plan.frame()},
        plan.summary(),
    )
