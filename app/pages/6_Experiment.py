"""Experiment: bring a randomised campaign log, get uplift per arm, a certified plan and its
off-policy value against random targeting and the best single arm."""

from __future__ import annotations

import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from app import ui
from growth import services as svc

st.set_page_config(page_title="Experiment", layout="wide")
ctx = ui.sidebar()
st.title("Experiment")
st.caption(
    "A randomised campaign log (one row per user: features, arm, propensity, outcomes) and "
    "its arms table (costs, budgets, the control); the format is in the README."
)

source = st.radio(
    "Log", ["The simulated world's randomised log", "Upload files"], key="experiment_source"
)
uploads = None
if source == "Upload files":
    uploads = st.file_uploader(
        "log and arms (.csv or .parquet)", accept_multiple_files=True, key="experiment_files"
    )
left, right = st.columns(2)
budget = left.number_input(
    "Total budget", min_value=0.0, value=300.0, step=50.0, key="experiment_budget"
)
outcome = left.selectbox("Outcome", ["conversion", "revenue", "visits"], key="experiment_outcome")
learners = right.multiselect(
    "Learners",
    ["t_lightgbm", "t", "x", "dr"],
    default=list(svc.LEARNERS),
    key="experiment_learners",
    help="The first is the incumbent: another replaces it only when its plan is worth more on "
    "the validation rows by more than 2 standard errors of the paired DR difference.",
)
seed = right.number_input("Seed", min_value=0, value=0, step=1, key="experiment_seed")

if st.button("Analyse", type="primary", key="experiment_analyse"):
    with st.status("Analysing the experiment ...", expanded=True) as progress:
        try:
            if uploads:
                exp, truth = (
                    svc.experiment_from_files({f.name: f.getvalue() for f in uploads}),
                    None,
                )
            elif source == "Upload files":
                raise ValueError("upload the log and arms files first")
            else:
                exp, truth = svc.world_experiment(ui.world(ctx.scenario, ctx.n_users))
            settings = svc.ExperimentSettings(
                budget=budget, outcome=outcome, learners=tuple(learners), seed=int(seed)
            )
            report = svc.analyse(exp, settings, truth=truth, stage=st.write)
        except ValueError as exc:
            progress.update(label="Cannot analyse", state="error")
            st.error(f"Cannot analyse: {exc}")
        else:
            progress.update(label="Experiment analysed", state="complete", expanded=False)
            st.session_state["experiment_report"] = report
            st.session_state.pop("saved_experiment", None)

if "experiment_report" in st.session_state:
    report = st.session_state["experiment_report"]
    summary = report.summary
    st.subheader(
        f"{summary['experiment']}: {summary['users']:,} users, learner **{report.chosen}** "
        f"(kept on the validation rows)"
    )
    st.caption("Why: " + "; ".join(summary.get("learner_choice", [])))
    ui.certificate(summary["certificate"])
    st.markdown("**The plan against the baselines** (test rows, doubly robust, per user)")
    st.dataframe(svc.comparison(report).round(4), hide_index=True)
    arms = report.arms
    uplift = go.Figure()
    uplift.add_bar(
        x=arms["arm"],
        y=arms["uplift"],
        name="measured (test rows, DR)",
        error_y={
            "type": "data",
            "array": arms["uplift_hi"] - arms["uplift"],
            "arrayminus": arms["uplift"] - arms["uplift_lo"],
        },
    )
    uplift.add_bar(x=arms["arm"], y=arms["predicted_uplift"], name="predicted (mean)")
    uplift.update_layout(title="Uplift by arm, per user", barmode="group")
    st.plotly_chart(uplift, key="experiment_uplift")
    st.plotly_chart(
        px.line(
            report.curve,
            x="budget",
            y="value",
            color="policy",
            error_y=report.curve["value_hi"] - report.curve["value"],
            markers=True,
            title="Value per user vs budget (test rows, DR)",
        ),
        key="experiment_curve",
    )
    st.dataframe(arms.round(4), hide_index=True)
    ui.save_run_form(
        "experiment",
        "experiment",
        svc.experiment_config(report),
        svc.experiment_tables(report),
        summary,
    )
