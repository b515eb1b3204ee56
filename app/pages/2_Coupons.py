"""Coupons: allocate coupons under platform, per-type and merchant budgets and coverage floors."""

from __future__ import annotations

import plotly.express as px
import streamlit as st

from app import ui
from growth import services as svc

st.set_page_config(page_title="Coupons", layout="wide")
ctx = ui.sidebar()
segments = ui.segments(ctx.scenario, ctx.n_users)
coupon_types = sorted(
    {str(t) for t in ui.features(ctx.scenario, ctx.n_users).option_type} - {"none", "merchant"}
)

st.title("Coupons")


@st.cache_resource(show_spinner=False)
def solve(scenario: str, n_users: int | None, settings_json: str):
    d = ui.decision(scenario, n_users)
    s = svc.CouponSettings.model_validate_json(settings_json)
    predictors = ui.predictors(scenario, n_users)
    plan = svc.plan_for(predictors, s)
    estimates = svc.plan_estimates(predictors, plan)
    return plan, svc.value_vs_budget(d, s, calibration=predictors.calibration), estimates


@st.cache_resource(show_spinner=False)
def front(scenario: str, n_users: int | None, settings_json: str):
    d = ui.decision(scenario, n_users)
    return svc.coupon_front(d, svc.CouponSettings.model_validate_json(settings_json))


left, right = st.columns(2)
with left:
    budget = st.number_input(
        "Platform budget", min_value=0.0, value=500.0, step=50.0, key="coupon_budget"
    )
    merchant_budget = st.number_input(
        "Budget per merchant", min_value=0.0, value=50.0, step=10.0, key="merchant_budget"
    )
    method = st.selectbox("Method", ["lagrangian", "auto", "highs", "cpsat"], key="method")
    st.markdown("**Budget per coupon type** (0 = no cap beyond the platform budget)")
    type_caps = {
        t: st.number_input(t, min_value=0.0, value=0.0, step=50.0, key=f"type_budget_{t}")
        for t in coupon_types
    }
with right:
    st.markdown("**Coverage floors** (minimum share of each segment with a coupon)")
    floors = {seg: st.slider(seg, 0.0, 1.0, 0.0, 0.05, key=f"floor_{seg}") for seg in segments}
settings = svc.CouponSettings(
    budget=budget,
    merchant_budget=merchant_budget,
    type_budgets={t: v for t, v in type_caps.items() if v},
    min_coverage={k: v for k, v in floors.items() if v > 0},
    method=method,
)

if st.button("Solve", type="primary", key="coupon_solve"):
    with st.status("Solving the coupon allocation ...", expanded=True) as progress:
        st.write("Loading the nightly run's predictors, or training them (once per world) ...")
        ui.predictors(ctx.scenario, ctx.n_users)
        st.write("Scoring every user under every coupon option (once per world) ...")
        ui.decision(ctx.scenario, ctx.n_users)
        st.write("Allocating coupons and sweeping the platform budget ...")
        try:
            plan, curve, estimates = solve(ctx.scenario, ctx.n_users, settings.model_dump_json())
        except ValueError as exc:
            progress.update(label="Cannot allocate", state="error")
            st.error(f"Cannot allocate: {exc}")
        else:
            progress.update(label="Coupons allocated", state="complete", expanded=False)
            st.session_state["coupon_result"] = (settings, plan, curve, estimates)
            st.session_state.pop("coupon_front", None)
            st.session_state.pop("saved_coupons", None)

if "coupon_result" in st.session_state:
    used, plan, curve, estimates = st.session_state["coupon_result"]
    decision = ui.decision(ctx.scenario, ctx.n_users)  # cached by the solve
    ui.provenance(ui.predictors(ctx.scenario, ctx.n_users))
    st.subheader(f"Allocation with platform budget {used.budget:,.0f}")
    if plan.allocation.status == "infeasible":
        st.error(f"No allocation meets every constraint: {plan.allocation.message}")
    else:
        ui.certificate(plan.allocation.certificate_dict())
        by_seg = svc.allocation_by_segment(decision, plan)
        st.plotly_chart(
            px.bar(by_seg, x="segment", y="users", color="coupon_type", barmode="stack"),
            key="allocation_chart",
        )
        st.dataframe(by_seg.round(3), hide_index=True)
        st.caption(
            "Spend by budget: "
            + ", ".join(f"{k} {v:,.1f} / {plan.budgets[k]:,.0f}" for k, v in plan.spend.items())
        )
        st.subheader("Estimated on the randomised holdout")
        value = estimates[estimates["quantity"] == "value"]
        st.plotly_chart(
            px.scatter(
                value,
                x="estimator",
                y="estimate",
                error_y=value["upper"] - value["estimate"],
                error_y_minus=value["estimate"] - value["lower"],
                labels={"estimate": "incremental conversions"},
            ),
            key="estimate_chart",
        )
        st.dataframe(estimates.round(2), hide_index=True, key="estimate_table")
        st.caption(
            "The plan's incremental conversions, incremental GMV and spend per budget, "
            "estimated off-policy (IPS, self-normalised IPS, doubly robust) on the exposure "
            "log's randomised holdout, with 95 % intervals (user-clustered standard errors), "
            "cross-fitted: the holdout's users are split in folds, and a plan made from "
            "predictions calibrated without a fold is valued on that fold, so no row that "
            "shaped a plan judges it. n_events counts a spend's redemptions among the rows "
            "given the plan's coupon; at 0 the interval reaches what the unseen "
            "redemptions could cost."
        )
        st.subheader("Value vs budget")
        cols = st.columns(2)
        cols[0].plotly_chart(
            px.line(curve, x="budget", y="conversions", markers=True), key="value_curve"
        )
        cols[1].plotly_chart(
            px.line(curve, x="budget", y="marginal_value", markers=True),
            key="dual_curve",
        )
        st.caption(
            "Marginal value: incremental conversions per extra unit of platform budget "
            "(the budget constraint's dual price)."
        )
        if st.button("Trace conversions vs GMV front", key="coupon_front_button"):
            with st.spinner("Tracing the conversions-vs-GMV front ..."):
                st.session_state["coupon_front"] = front(
                    ctx.scenario, ctx.n_users, used.model_dump_json()
                )
        if "coupon_front" in st.session_state:
            pts = st.session_state["coupon_front"]
            st.plotly_chart(
                px.line(pts, x="conversions", y="gmv", markers=True, hover_data=["spend"]),
                key="gmv_front",
            )
        ui.save_run_form(
            "coupons",
            "coupons",
            {"coupons": used.model_dump()},
            svc.coupon_tables(decision, plan, st.session_state.get("coupon_front"), estimates),
            plan.summary(),
        )
