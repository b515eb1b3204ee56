"""The growth platform's domain: data, the simulated world, models, campaigns, jobs, services, store.

Packages by concept (see ARCHITECTURE.md): :mod:`growth.data` (the dataset format),
:mod:`growth.world` (the simulated world with ground truth), :mod:`growth.modeling`
(features, training, model choice), :mod:`growth.campaigns` (coupons, push, install
control), :mod:`growth.jobs` (the nightly job), :mod:`growth.services` (what the app
calls), :mod:`growth.store` (the SQL store) and :mod:`growth.cli` (the command line).
"""
