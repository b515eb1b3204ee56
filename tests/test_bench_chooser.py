"""The chooser's validation benchmark: its worlds (variations, seeds) and its tables."""

from __future__ import annotations

import argparse

from benchmarks.bench_chooser import (
    parse_worlds,
    table,
    variations_table,
    world_config,
    world_spec,
)


def test_worlds_are_run_in_the_order_given():
    """``variation:seeds`` items expand to (variation, seed) pairs, ranges and lists, in order."""
    assert parse_worlds(["small:1-3", "default:5,7"]) == [
        ("small", 1),
        ("small", 2),
        ("small", 3),
        ("default", 5),
        ("default", 7),
    ]


def test_the_small_variation_is_the_small_scenario_at_its_own_size_and_budgets():
    """The small worlds are the small scenario's 3,000 users with bench_truth_scoring's
    budgets (platform 500, merchants 2,000), whatever the default worlds' size and budgets."""
    args = argparse.Namespace(users=20_000, budget=4_000.0, merchant_budget=400.0)
    spec = world_spec("small", args)
    assert (spec["budget"], spec["merchant_budget"]) == (500.0, 2_000.0)
    assert world_config("small", 1, spec["users"], spec["scenario"]).n_users == 3_000
    assert world_spec("newheavy", args)["users"] == 20_000
    assert world_config("source50", 1, 1_000).has_source_rate == 0.5


def world(name: str, csde: float, lightgbm: float, diff: float, se: float) -> dict:
    """A cached world's figures, only what the table reads."""
    models = {n: {"played_value": v} for n, v in (("csde", csde), ("lightgbm", lightgbm))}
    picks = {c: "csde" for c in ("logloss", "auc", "qini", "qini_2se", "plan_value")}
    return {
        "world": name,
        "models": models,
        "picks": picks,
        "difference": {"value": diff, "se": se},
        "difference_of": ["lightgbm", "csde"],
    }


def test_the_table_counts_hits_and_the_value_lost_by_each_rule():
    """LightGBM's plan is truly better on one world by 10 %: a 3-se difference moves the
    rule at z = 2 (a hit), not at z = 3 (a miss losing 10 %); on the other CSDE is better."""
    results = [world("small/1", 90.0, 100.0, 30.0, 10.0), world("small/2", 50.0, 40.0, -5.0, 10.0)]
    rows = {line.split(" | ")[0][2:]: line for line in table(results).splitlines()[2:]}
    assert rows["plan_value_z2"] == "| plan_value_z2 | 2 / 2 | - | 0.00 % |"
    assert rows["plan_value_z3"] == "| plan_value_z3 | 1 / 2 | 10.00 % | 10.00 % |"
    assert rows["qini_2se"].startswith("| qini_2se | 1 / 2 |")


def test_the_variations_table_counts_hits_per_variation_and_overall():
    """One row per criterion: hits in each variation, over every world, and the value lost."""
    results = {
        "small": [world("small/1", 90.0, 100.0, 30.0, 10.0)],
        "default": [world("default/1", 50.0, 40.0, -5.0, 10.0)],
    }
    lines = variations_table(results).splitlines()
    assert lines[0].startswith("| criterion | small (1) | default (1) | all (2) |")
    rows = {line.split(" | ")[0][2:]: line for line in lines[2:]}
    assert rows["plan_value_z3"] == "| plan_value_z3 | 0 | 1 | 1 | 10.00 % | 10.00 % |"
