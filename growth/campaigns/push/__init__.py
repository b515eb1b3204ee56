"""The push campaign: the audience, the day's schedule under fatigue, and scoring against the truth.

:func:`plan_push` fits the open model, builds the day's
:class:`~optimizers.push.PushProblem` for the audience once and schedules it;
:func:`score_against_truth` scores the schedule on a simulated world beside the
oracle's.
"""

from growth.campaigns.push.audience import HOURS, PushAudience, push_audience
from growth.campaigns.push.plan import PushPlan, plan_push, push_problem
from growth.campaigns.push.truth import score_against_truth, true_push_value

__all__ = [
    "HOURS",
    "PushAudience",
    "PushPlan",
    "plan_push",
    "push_audience",
    "push_problem",
    "score_against_truth",
    "true_push_value",
]
