"""The nightly job: its config, the stages, the production wrapper (lease, run, logs)."""
