"""Tests for push scheduling under fatigue (optimizers.push)."""

from __future__ import annotations

import numpy as np
import pytest

from optimizers.push import (
    DecompositionConfig,
    PushInfeasibleError,
    PushProblem,
    schedule_push,
    solve_decomposition,
)

INDUSTRIES = np.array(["fashion", "food", "travel"])


def random_problem(
    n_users: int,
    n_msgs: int,
    seed: int,
    *,
    fatigue_cap: int = 3,
    min_gap: int = 2,
    cap_per_hour: float | None = None,
    shares: dict | None = None,
    decay: float = 0.7,
) -> PushProblem:
    """Hourly activity profile x relevance, tight capacity and two share floors."""
    rng = np.random.default_rng(seed)
    activity = 0.3 + np.sin(np.linspace(0, np.pi, 24)) ** 2
    relevance = rng.beta(2, 5, (n_users, n_msgs))
    noise = rng.uniform(0.5, 1.5, (n_users, n_msgs, 24))
    p = np.clip(0.5 * relevance[:, :, None] * activity * noise, 0, 1)
    industry = rng.choice(INDUSTRIES, size=(n_users, n_msgs))
    if cap_per_hour is None:
        cap_per_hour = float(np.ceil(0.3 * n_users * fatigue_cap / 24))
    return PushProblem(
        p,
        industry,
        fatigue_cap=fatigue_cap,
        min_gap=min_gap,
        capacity=cap_per_hour,
        industry_share={"travel": 0.3, "food": 0.3} if shares is None else shares,
        decay=decay,
    )


def violations(problem: PushProblem, plan) -> list[str]:
    return problem.violations(plan.pushes.user, plan.pushes.message, plan.pushes.hour)


@pytest.mark.parametrize("seed", [0, 1])
def test_decomposition_matches_cpsat_optimum(seed: int) -> None:
    """On small instances the decomposition is near the CP-SAT optimum and bounds it."""
    prob = random_problem(8, 3, seed)
    exact = schedule_push(prob, method="cpsat", time_limit_s=30)
    assert exact.status == "optimal"
    assert exact.upper_bound >= exact.objective - 1e-4
    dec = solve_decomposition(prob, DecompositionConfig(tol=1e-4, max_iter=150))
    assert dec.upper_bound >= exact.objective - 1e-6  # a valid bound
    assert dec.objective <= exact.upper_bound + 1e-6
    assert dec.objective >= 0.97 * exact.objective
    assert violations(prob, exact) == []
    assert violations(prob, dec) == []


@pytest.mark.parametrize("seed", range(6))
def test_decomposition_never_breaks_constraints(seed: int) -> None:
    """Cap, gap, once, capacity and share floors hold for every seed and setting."""
    rng = np.random.default_rng(100 + seed)
    prob = random_problem(
        60,
        int(rng.integers(2, 6)),
        seed,
        fatigue_cap=int(rng.integers(1, 5)),
        min_gap=int(rng.integers(1, 6)),
        cap_per_hour=float(rng.integers(1, 8)),
        shares={"travel": 0.4, "fashion": 0.25},
        decay=float(rng.uniform(0.3, 1.0)),
    )
    plan = solve_decomposition(prob, DecompositionConfig(max_iter=30))
    assert violations(prob, plan) == []
    assert plan.objective <= plan.upper_bound
    assert plan.objective == pytest.approx(plan.pushes.value.sum())
    assert plan.pushes_per_user.sum() == prob.n_users
    assert plan.pushes_per_user.size == prob.max_pushes_per_user + 1


def test_cpsat_never_breaks_constraints() -> None:
    """The exact model's schedule meets every constraint, including a binding share floor."""
    prob = random_problem(6, 3, 7, shares={"fashion": 0.5}, cap_per_hour=1)
    plan = schedule_push(prob, method="cpsat", time_limit_s=30)
    assert violations(prob, plan) == []
    counts = plan.pushes.industry.value_counts()
    assert counts.get("fashion", 0) >= 0.5 * len(plan.pushes)


@pytest.mark.parametrize("method", ["cpsat", "decomposition"])
def test_decay_spreads_pushes_over_users(method: str) -> None:
    """With equal values, fatigue decay makes two scarce slots go to two users, not one."""
    p = np.full((2, 2, 24), 0.5)
    capacity = np.zeros(24)
    capacity[[3, 9]] = 1  # only two pushes can leave all day
    prob = PushProblem(p, [["a", "a"], ["a", "a"]], fatigue_cap=2, capacity=capacity, decay=0.5)
    plan = schedule_push(prob, method=method)
    assert sorted(plan.pushes.user.tolist()) == [0, 1]
    assert plan.objective == pytest.approx(1.0)
    assert plan.pushes_per_user.tolist() == [0, 2, 0]


def test_min_gap_and_position_decay_in_values() -> None:
    """Pushes to one user respect the gap and later pushes are valued at decay**position."""
    p = np.zeros((1, 3, 24))
    p[0, :, 10] = [0.9, 0.8, 0.7]  # everyone wants hour 10, but gap forces spreading
    p[0, :, 11] = 0.6
    p[0, :, 14] = 0.5
    prob = PushProblem(p, [["x", "y", "z"]], fatigue_cap=3, min_gap=4, decay=0.5)
    for method in ("cpsat", "decomposition"):
        plan = schedule_push(prob, method=method)
        assert plan.pushes.hour.tolist() == [10, 14]
        assert plan.pushes.value.tolist() == pytest.approx([0.9, 0.5 * 0.5])
        assert violations(prob, plan) == []


def test_share_floor_forces_weaker_industry() -> None:
    """A share floor makes the solver send the less attractive industry."""
    p = np.zeros((4, 2, 24))
    p[:, 0, :] = 0.6  # industry 'big' is better for everyone
    p[:, 1, :] = 0.1
    prob = PushProblem(
        p, [["big", "small"]] * 4, fatigue_cap=1, capacity=1, industry_share={"small": 0.5}
    )
    for method in ("cpsat", "decomposition"):
        plan = schedule_push(prob, method=method)
        counts = plan.pushes.industry.value_counts()
        assert counts["small"] == counts["big"] == 2
        assert plan.objective == pytest.approx(2 * 0.6 + 2 * 0.1)


def test_large_instance_uses_sample_warm_start_and_stays_feasible() -> None:
    """Above sample_users the price warm start runs and the plan is still feasible."""
    prob = random_problem(400, 4, 3)
    cfg = DecompositionConfig(sample_users=100, sample_iter=10, max_iter=10, tol=1e-3)
    plan = solve_decomposition(prob, cfg)
    assert plan.info["sample_iterations"] > 0
    assert violations(prob, plan) == []
    assert plan.gap < 0.05
    assert (plan.dual_capacity >= 0).all()
    assert set(plan.dual_industry) == set(INDUSTRIES.tolist())


def test_auto_picks_method_by_size() -> None:
    """'auto' solves tiny days exactly and large ones by decomposition."""
    small = random_problem(2, 2, 0, shares={})
    assert schedule_push(small).method == "cpsat"
    big = random_problem(200, 3, 0)
    assert schedule_push(big, time_limit_s=5).method == "decomposition"


def test_shares_summing_above_one_are_explained() -> None:
    """Share floors summing to more than 1 raise, naming every floor involved."""
    with pytest.raises(PushInfeasibleError, match=r"industry_share\['food'\].*travel.*> 1"):
        random_problem(3, 2, 0, shares={"food": 0.6, "travel": 0.5})


def test_share_without_candidates_is_explained() -> None:
    """A positive floor for an industry nobody can receive raises, naming it."""
    with pytest.raises(PushInfeasibleError, match="industry_share\\['games'\\]"):
        random_problem(3, 2, 0, shares={"games": 0.1})
    p = np.full((1, 2, 24), 0.2)
    mask = np.array([[True, False]])
    with pytest.raises(PushInfeasibleError, match="'b'"):
        PushProblem(p, [["a", "b"]], fatigue_cap=1, industry_share={"b": 0.2}, candidate_mask=mask)
    zero = PushProblem(p, [["a", "b"]], fatigue_cap=1, industry_share={"b": 0.0})
    assert zero.share.tolist() == [0.0, 0.0]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"open_prob": np.full((2, 2, 24), 1.5)}, r"open_prob\[0, 0, 0\] = 1.5 is outside"),
        ({"open_prob": np.full((2, 3, 24), 0.1)}, "shape"),
        ({"fatigue_cap": -1}, "fatigue_cap"),
        ({"min_gap": 0}, "min_gap"),
        ({"capacity": -1.0}, r"capacity\[0\]"),
        ({"capacity": np.ones(5)}, "length 24"),
        ({"decay": 0.0}, "decay"),
        ({"industry_share": {"a": 1.2}}, r"industry_share\['a'\]"),
    ],
)
def test_bad_input_is_rejected_with_clear_message(kwargs: dict, message: str) -> None:
    """Shapes, probabilities, cap, gap, capacity, decay and shares are checked at the boundary."""
    args = {
        "open_prob": np.full((2, 2, 24), 0.1),
        "industry": [["a", "b"], ["a", "b"]],
        "fatigue_cap": 2,
        "min_gap": 1,
        "capacity": 3.0,
        "decay": 0.8,
        "industry_share": {},
    }
    args.update(kwargs)
    p = args.pop("open_prob")
    ind = args.pop("industry")
    with pytest.raises(ValueError, match=message):
        PushProblem(p, ind, **args)


def test_callable_open_prob_and_padding_mask() -> None:
    """A callable per hour equals the array form; padded candidates are never sent."""
    rng = np.random.default_rng(5)
    arr = rng.uniform(0, 0.5, (5, 3, 24))
    mask = np.ones((5, 3), dtype=bool)
    mask[:, 0] = False  # the best-looking slot is padding
    arr[:, 0, :] = 1.0
    ind = [["a", "b", "c"]] * 5
    kw = {"fatigue_cap": 2, "min_gap": 3, "capacity": 2.0, "decay": 0.8, "candidate_mask": mask}
    from_fn = PushProblem(lambda h: arr[:, :, h], ind, **kw)
    from_arr = PushProblem(arr, ind, **kw)
    np.testing.assert_array_equal(from_fn.open_prob, from_arr.open_prob)
    for method in ("cpsat", "decomposition"):
        plan = schedule_push(from_arr, method=method)
        assert (plan.pushes.message != 0).all()
        assert violations(from_arr, plan) == []


def test_closed_hours_and_zero_cap() -> None:
    """Hours with zero capacity get no pushes; a zero fatigue cap gives an empty plan."""
    p = np.full((3, 2, 24), 0.3)
    capacity = np.full(24, 5.0)
    capacity[:12] = 0
    prob = PushProblem(p, [["a", "b"]] * 3, fatigue_cap=2, min_gap=2, capacity=capacity)
    plan = solve_decomposition(prob)
    assert (plan.pushes.hour >= 12).all() and len(plan.pushes) == 6
    assert np.isinf(plan.dual_capacity[:12]).all()
    none = PushProblem(p, [["a", "b"]] * 3, fatigue_cap=0)
    for method in ("cpsat", "decomposition"):
        empty = schedule_push(none, method=method)
        assert len(empty.pushes) == 0 and empty.objective == 0.0 and empty.upper_bound == 0.0


def _one_hour_problem(shares: dict, n_users: int = 3) -> PushProblem:
    """Users with one hour and one push each: message 'a' opens at 0.5, message 'b' at 0.1."""
    p = np.array([[[0.5], [0.1]]] * n_users)
    return PushProblem(p, [["a", "b"]] * n_users, fatigue_cap=1, industry_share=shares)


def _brute_force(problem: PushProblem, shares: dict) -> float:
    """The posed optimum by enumeration, every floor checked with exact fractions."""
    from fractions import Fraction
    from itertools import product

    best = 0.0
    for choice in product((-1, 0, 1), repeat=problem.n_users):  # -1: no push
        users = [u for u, c in enumerate(choice) if c >= 0]
        msgs = [choice[u] for u in users]
        labels = [
            str(problem.industries[problem.industry_code[u, m]])
            for u, m in zip(users, msgs, strict=True)
        ]
        floors_hold = all(
            labels.count(label) >= Fraction(share) * len(labels) for label, share in shares.items()
        )
        if floors_hold:
            best = max(
                best, sum(problem.open_prob[u, m, 0] for u, m in zip(users, msgs, strict=True))
            )
    return best


def test_share_floor_rounding_keeps_the_posed_optimum() -> None:
    """A floor just below 1/3 must not be rounded up to 0.3334: 1 push of 'b' in 3 meets it."""
    shares = {"b": 1 / 3 - 3e-5}
    prob = _one_hour_problem(shares)
    optimum = _brute_force(prob, shares)  # a, a, b: 1.1 (rounded up, 'b' would need 2 of 3: 0.7)
    assert optimum == pytest.approx(1.1)
    plan = schedule_push(prob, method="cpsat")
    assert plan.upper_bound >= optimum
    assert plan.objective == pytest.approx(optimum)
    assert plan.status == "optimal"


@pytest.mark.parametrize("method", ["cpsat", "decomposition"])
def test_share_floor_is_met_exactly(method: str) -> None:
    """A floor a hair above 1/2 needs 2 pushes of 'b' in 2: the float's exact value is the floor."""
    from fractions import Fraction

    shares = {"b": 0.5000000001}
    prob = _one_hour_problem(shares, n_users=2)  # 'a', 'b' (0.6) breaks it by 2e-10 pushes
    plan = schedule_push(prob, method=method)
    counts = plan.pushes.industry.value_counts()
    total = len(plan.pushes)
    assert Fraction(int(counts.get("b", 0)), max(total, 1)) >= Fraction(0.5000000001)
    assert not violations(prob, plan)
    assert plan.upper_bound >= _brute_force(prob, shares) - 1e-12


def test_share_floor_may_be_an_exact_fraction() -> None:
    """A float floor is its exact binary value; a Fraction states an exact decimal."""
    from fractions import Fraction

    hair_above = _one_hour_problem({"b": 0.5000000001}, n_users=2)
    half = _one_hour_problem({"b": Fraction(1, 2)}, n_users=2)
    assert hair_above.floor_counts(2).tolist() == [0, 2]
    assert half.floor_counts(2).tolist() == [0, 1]
    assert schedule_push(hair_above, method="cpsat").objective == pytest.approx(0.1 + 0.1)
    assert schedule_push(half, method="cpsat").objective == pytest.approx(0.5 + 0.1)


def test_ceil_fraction_is_the_least_fraction_above() -> None:
    """The model's floor is the least fraction >= the share with a bounded denominator."""
    import math
    from fractions import Fraction

    from optimizers.push.problem import ceil_fraction

    rng = np.random.default_rng(0)
    for x in [*rng.random(300), 0.1, 0.3, 1 / 3, 0.5000000001, 1.0]:
        exact = Fraction(float(x))
        for n in (1, 2, 7, 30, 97):
            brute = min(Fraction(math.ceil(exact * q), q) for q in range(1, n + 1))
            assert ceil_fraction(exact, n) == brute


def test_objective_above_its_bound_raises() -> None:
    """A bound below the plan's objective is a bug that raises, never a gap of 0."""
    from optimizers.certificate import CertificateError
    from optimizers.push.result import make_schedule

    prob = _one_hour_problem({})
    users, msgs, hours = np.array([0, 1]), np.array([0, 0]), np.array([0, 0])
    with pytest.raises(CertificateError, match="exceeds its upper bound"):
        make_schedule(
            prob,
            users,
            msgs,
            hours,
            upper_bound=0.9,  # the two pushes are worth 1.0
            status="optimal",
            solve_time_s=0.0,
            method="test",
            dual_capacity=np.zeros(1),
            dual_industry=np.zeros(prob.n_industries),
        )


def test_repair_runs_every_k_iterations_and_on_the_last(monkeypatch) -> None:
    """``repair_every`` spaces the costly repairs; the last iteration's schedule is still repaired."""
    import optimizers.push.decomposition as decomposition

    calls: list[int] = []
    real = decomposition.repair

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(decomposition, "repair", counting)
    prob = random_problem(60, 4, 3, cap_per_hour=3.0, shares={"travel": 0.4})
    cfg = DecompositionConfig(max_iter=12, tol=0.0, repair_every=5)
    plan = solve_decomposition(prob, cfg)
    iterations = plan.info["iterations"]
    expected = len(
        {i for i in range(iterations) if i % 5 == 0} | {cfg.max_iter - 1} & set(range(iterations))
    )
    assert len(calls) == expected < iterations
    assert violations(prob, plan) == []
    assert plan.objective <= plan.upper_bound
    with pytest.raises(ValueError, match="repair_every"):
        DecompositionConfig(repair_every=0)
