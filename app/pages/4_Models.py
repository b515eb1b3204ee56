"""Models: predictor metrics by lifecycle segment, calibration, CSDE domain attention."""

from __future__ import annotations

import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from app import ui
from growth import services as svc

st.set_page_config(page_title="Models", layout="wide")
ctx = ui.sidebar()
pred = ui.predictors(ctx.scenario, ctx.n_users)

st.title("Models")


@st.cache_data(show_spinner="Computing calibration ...")
def calibration(scenario: str, n_users: int | None):
    return svc.calibration_frame(ui.predictors(scenario, n_users))


@st.cache_data(show_spinner="Calibrating per coupon option ...")
def option_calibration(scenario: str, n_users: int | None):
    return svc.option_calibration_frame(ui.predictors(scenario, n_users))


@st.cache_data(show_spinner=False)
def attention(scenario: str, n_users: int | None):
    p = ui.predictors(scenario, n_users)
    return svc.csde_attention(p.features, seed=p.seed)


st.subheader("Metrics by domain, scene and lifecycle segment (stored runs)")
stored = svc.stored_model_metrics(ui.store())
if stored.empty:
    st.info("No model metrics in the store yet (the nightly job writes them).")
else:
    samples = sorted(
        {f"{d} / {s}" if s else d for d, s in zip(stored["domain"], stored["scene"], strict=True)}
    )
    left, right = st.columns(2)
    sample = left.selectbox("Domain / scene", samples, key="stored_sample")
    metric = right.selectbox("Metric", sorted(stored["metric"].unique()), key="stored_metric")
    domain, _, scene = sample.partition(" / ")
    view = stored[
        (stored["metric"] == metric) & (stored["domain"] == domain) & (stored["scene"] == scene)
    ]
    st.plotly_chart(
        px.bar(view, x="segment", y="value", color="model", barmode="group", hover_data=["run_id"]),
        key="stored_metrics_chart",
    )
    st.dataframe(view, hide_index=True)

st.subheader("This world's predictor (newest rows, by domain, scene and segment)")
ui.provenance(pred)
live = pred.metrics.pivot_table(
    index=["model", "domain", "scene", "segment"], columns="metric", values="value"
)
st.dataframe(live.round(4))

st.subheader("Calibration (chronological holdout)")
cal = calibration(ctx.scenario, ctx.n_users)
fig = px.line(cal, x="predicted", y="observed", color="segment", markers=True, hover_data=["n"])
fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], name="perfect", line={"dash": "dot"}))
st.plotly_chart(fig, key="calibration_chart")

st.subheader("Calibration per coupon option x segment (what the coupon plan uses)")
st.caption(
    "Expected calibration error and observed/predicted events before and after the "
    "per-group calibration, measured on holdout rows the calibrator did not learn from: "
    "conversions, and redemption (a threshold coupon's conversions whose basket reaches "
    "the threshold; coupons without a threshold always do)."
)
st.dataframe(option_calibration(ctx.scenario, ctx.n_users).round(4), hide_index=True)

st.subheader("Coupon effects per segment: the log against the model")
st.caption(
    "Per lifecycle segment, the platform's coupon effects the whole randomised log shows over "
    "the ones the model predicts (beta, with its standard error): a model shrinks the effects "
    "it learns from few rows. 'factor' is what the plan's value would multiply them by, "
    "'applied' what it does (1 where the nightly's stretch_effects is off)."
)
st.dataframe(svc.uplift_scale_frame(pred).round(3), hide_index=True)

st.subheader("CSDE domain attention by segment")
if not svc.csde_available():
    st.info("The CSDE predictor is not installed in this build; attention is unavailable.")
else:
    st.caption(
        "How much each prediction relies on the user's own target-domain history, the "
        "source-domain history and the generated cross-domain embedding."
    )
    if st.button("Train CSDE and show attention", key="csde_button"):
        with st.spinner("Training a small CSDE model ..."):
            st.session_state["csde_attention"] = attention(ctx.scenario, ctx.n_users)
    if "csde_attention" in st.session_state:
        table = st.session_state["csde_attention"]
        long = table.melt(
            id_vars=["segment", "n"], value_vars=["target", "source", "csde"], var_name="domain"
        )
        st.plotly_chart(
            px.bar(long, x="segment", y="value", color="domain", barmode="stack"),
            key="attention_chart",
        )
