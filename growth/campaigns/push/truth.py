"""A push schedule scored against the world's true open probabilities, beside the oracle's."""

from __future__ import annotations

import numpy as np
import pandas as pd

from growth.campaigns.push.audience import HOURS, PushAudience
from growth.campaigns.push.plan import PushPlan, push_problem
from optimizers.push import schedule_push


def true_push_value(world, audience: PushAudience, pushes: pd.DataFrame) -> float:
    """Expected opens of a schedule under the world's true open probability and fatigue."""
    users = pushes["user"].to_numpy()
    return float(
        world.open_prob(
            audience.user_ids[users],
            audience.message_ids[users, pushes["message"].to_numpy()],
            pushes["hour"].to_numpy(),
            pushes["position"].to_numpy(),
        ).sum()
    )


def score_against_truth(world, plan: PushPlan) -> dict[str, float]:
    """Expected true opens of the platform's schedule and of the oracle's (solved on the truth).

    The oracle schedules the same audience under the plan's settings and seed,
    on the world's true open probabilities and fatigue decay.
    """
    a, settings = plan.audience, plan.settings
    n, m = a.message_ids.shape
    users = np.repeat(np.arange(n), m * HOURS)
    msgs = np.where(a.mask, a.message_ids, 0)
    true_p = (
        world.open_prob(
            a.user_ids[users],
            np.repeat(msgs.ravel(), HOURS),
            np.tile(np.arange(HOURS), n * m),
            np.zeros(n * m * HOURS, dtype=np.int64),
        ).reshape(n, m, HOURS)
        * a.mask[:, :, None]
    )
    oracle = schedule_push(
        push_problem(a, true_p, world.config.fatigue_decay, settings),
        time_limit_s=settings.time_limit_s,
        max_iter=settings.iterations,
        repair_every=settings.repair_every,
        seed=plan.seed,
    )
    return {
        "platform": true_push_value(world, a, plan.schedule.pushes),
        "oracle": true_push_value(world, a, oracle.pushes),
        "platform_pushes": len(plan.schedule.pushes),
        "oracle_pushes": len(oracle.pushes),
    }
