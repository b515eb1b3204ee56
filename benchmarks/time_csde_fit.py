"""CSDE's fit on the demo's world with the nightly's caps: seconds, epochs and losses.

Usage: .venv/bin/python benchmarks/time_csde_fit.py [--users 100000]

Runs what the nightly's train stage runs for CSDE alone (``train_models`` with
``predictor="csde"``, the nightly's ``max_train_rows`` and ``max_source_rows``, one torch
thread, seed 0) on the default scenario and prints the seconds it took and each epoch's
losses.  Run it beside another tree's copy, the same way
(``PYTHONPATH=<tree> .venv/bin/python benchmarks/time_csde_fit.py``): equal losses say the
two trees fit the same model on the same rows, so a difference in seconds is the code's,
and equal seconds put a slower demo on the machine.
"""

from __future__ import annotations

import argparse
import time

from growth import services as svc
from growth.jobs.config import NightlyConfig
from growth.modeling.training import train_models


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    args = parser.parse_args()
    config = NightlyConfig()
    features = svc.conversion_features(svc.load_world("default", args.users))
    start = time.perf_counter()
    models = train_models(
        features,
        predictor="csde",
        max_train_rows=config.max_train_rows,
        max_source_rows=config.max_source_rows,
        torch_threads=1,
        seed=0,
    )
    seconds = time.perf_counter() - start
    history = models.conversion.history_
    for row in history:
        print(f"epoch {row['epoch']}: train {row['train_loss']:.4f}, valid {row['valid_loss']:.4f}")
    print(f"train_models(csde): {seconds:.1f} s, {len(history)} epochs")


if __name__ == "__main__":
    main()
