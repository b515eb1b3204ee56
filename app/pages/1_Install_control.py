"""Install control: split the acquisition budget across channels, trace the Pareto front."""

from __future__ import annotations

import io
import json

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from app import ui
from growth import services as svc

st.set_page_config(page_title="Install control", layout="wide")
ctx = ui.sidebar()
w = ui.world(ctx.scenario, ctx.n_users)
models = ui.channel_models(ctx.scenario, ctx.n_users)
channels = svc.channel_table(w.dataset)
names = dict(zip(channels["channel_id"], channels["name"], strict=True))

st.title("Install control")


@st.cache_data(show_spinner="Drawing response curves ...")
def curves(scenario: str, n_users: int | None, max_spend: float) -> pd.DataFrame:
    return svc.response_curves(ui.channel_models(scenario, n_users), names, max_spend)


@st.cache_resource(show_spinner=False)
def solve(
    scenario: str, n_users: int | None, settings_json: str, table_json: str, targets_json: str
) -> svc.InstallPlan:
    return svc.plan_install(
        ui.channel_models(scenario, n_users),
        names,
        svc.InstallSettings.model_validate_json(settings_json),
        table=pd.read_json(io.StringIO(table_json), orient="split"),
        targets=json.loads(targets_json),
    )


left, right = st.columns([1, 2])
with left:
    budget = st.number_input(
        "Daily budget", min_value=1.0, value=5_000.0, step=500.0, key="install_budget"
    )
    objective = st.selectbox("Maximise", ["retained", "logins", "installs"], key="objective")
    n_points = st.slider("Pareto points", 2, 20, 6, key="pareto_points")
    st.markdown("**Targets** (0 = none)")
    targets = {
        m: st.number_input(f"at least {m}", min_value=0.0, value=0.0, step=50.0, key=f"t_{m}")
        for m in ("installs", "logins", "retained")
    }
with right:
    st.markdown("**Channels** (edit spend bounds and the maximum cost per install)")
    table = st.data_editor(
        channels,
        key="channels",
        hide_index=True,
        disabled=["channel_id", "name", "kind"],
        column_config={
            "min_spend": st.column_config.NumberColumn(min_value=0.0),
            "max_spend": st.column_config.NumberColumn(min_value=0.0),
            "max_cpi": st.column_config.NumberColumn("max cost/install", min_value=0.0),
        },
    )

st.subheader("Fitted response curves (90% interval)")
fig = go.Figure()
curve_frame = curves(ctx.scenario, ctx.n_users, float(budget))
for i, (name, g) in enumerate(curve_frame.groupby("channel")):
    color = px.colors.qualitative.Plotly[i % len(px.colors.qualitative.Plotly)]
    fig.add_trace(
        go.Scatter(
            x=pd.concat([g["spend"], g["spend"][::-1]]),
            y=pd.concat([g["installs_hi"], g["installs_lo"][::-1]]),
            fill="toself",
            fillcolor=color,
            opacity=0.15,
            line={"width": 0},
            showlegend=False,
            hoverinfo="skip",
            legendgroup=name,
        )
    )
    fig.add_trace(
        go.Scatter(
            x=g["spend"], y=g["installs"], name=name, line={"color": color}, legendgroup=name
        )
    )
# a channel with a wide interval must not flatten every other curve
top = 1.5 * float(curve_frame["installs"].max())
fig.update_layout(
    xaxis_title="daily spend", yaxis_title="installs", yaxis_range=[0, top], height=420
)
st.plotly_chart(fig, key="curves_chart")

settings = svc.InstallSettings(budget=budget, objective=objective, pareto_points=n_points)
if st.button("Solve", type="primary", key="install_solve"):
    with st.spinner("Solving the budget split and tracing the Pareto front ..."):
        try:
            result = solve(
                ctx.scenario,
                ctx.n_users,
                settings.model_dump_json(),
                table.to_json(orient="split"),
                json.dumps(targets),
            )
        except ValueError as exc:
            st.error(f"Cannot solve: {exc}")
        else:
            st.session_state["install_result"] = result
            st.session_state.pop("saved_install", None)

result: svc.InstallPlan | None = st.session_state.get("install_result")
if result is not None:
    plan = result.split
    st.subheader(f"Plan: maximise {plan.objective_name} with budget {result.settings.budget:,.0f}")
    if not result.feasible:
        st.error(
            "These targets and bounds cannot all hold. "
            + (
                f"The smallest budget meeting them is {plan.min_budget:,.0f}."
                if plan.min_budget is not None
                else "No budget meets them under these spend bounds."
            )
        )
        st.markdown("**Conflicting constraints** (shortfall in the constraint's own units)")
        st.dataframe(result.conflicts(), hide_index=True)
    else:
        ui.certificate(plan.certificate_dict())
        st.caption(
            f"Marginal value of budget: {plan.budget_dual:.4f} {plan.objective_name} per unit"
        )
        split = result.split_frame()
        st.plotly_chart(
            px.bar(split, x="channel", y="spend", hover_data=["installs", "retained"]),
            key="split_chart",
        )
        st.subheader("Pareto front: installs vs retained (colour: logins)")
        front = result.front_frame()
        pick = st.slider("Pareto point", 0, len(front) - 1, 0, key="pareto_pick")
        chart = px.scatter(
            front,
            x="installs",
            y="retained",
            color="logins",
            size=[14 if i == pick else 8 for i in front["point_id"]],
            hover_data=["point_id", "spend", "gap"],
        )
        event = st.plotly_chart(chart, key="front_chart", on_select="rerun")
        selected = (event or {}).get("selection", {}).get("points", []) if event else []
        if selected:
            pick = int(selected[0].get("point_index", pick))
        st.markdown(f"**Channel split of point {pick}**")
        st.dataframe(result.point_split(pick).round(2), hide_index=True)
        ui.save_run_form(
            "install",
            "install",
            {"settings": result.settings.model_dump(), "targets": dict(result.limits.targets)},
            result.store_tables(),
            result.summary(),
        )

st.subheader("Cheapest budget for the targets")
if st.button("Find cheapest budget", key="cheapest"):
    try:
        with st.spinner("Minimising spend subject to the targets ..."):
            cheap = svc.cheapest_install_budget(models, targets, table=table)
    except ValueError as exc:
        st.warning(str(exc))
    else:
        if cheap.status == "infeasible":
            conflicts = ", ".join(f"{c.name} (short {c.shortfall:,.1f})" for c in cheap.conflicts)
            st.error(f"No budget meets these targets: {conflicts or cheap.message}")
        else:
            st.success(
                f"Least budget: {cheap.min_budget:,.0f} "
                f"(proven lower bound {cheap.lower_bound:,.0f}, gap {cheap.gap:.2%})"
            )
            st.dataframe(
                pd.DataFrame(
                    {
                        "channel": [names[int(c)] for c in cheap.spend.index],
                        "spend": cheap.spend.to_numpy(),
                        "installs": cheap.installs.to_numpy(),
                        "retained": cheap.retained.to_numpy(),
                    }
                ).round(2),
                hide_index=True,
            )
