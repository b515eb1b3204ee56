"""Where the platform's files live: one data root, resolved from the working directory.

Every default path (scenarios, the embedded SQLite database, logs, stored models)
sits under the *data root*: ``$GROWTH_DATA_ROOT`` when set, else ``data`` in the
working directory.  Nothing is resolved against the source tree, so an installed
package behaves like a checkout run from its top folder.

>>> import os
>>> os.environ.pop(DATA_ROOT_ENV, None) and None
>>> str(data_root()), str(log_dir())
('data', 'data/logs')
>>> default_db_url()
'sqlite:///data/growth.db'
"""

from __future__ import annotations

import os
from pathlib import Path

DATA_ROOT_ENV = "GROWTH_DATA_ROOT"
"""Environment variable naming the data root (default: ``data`` in the working directory)."""
DEFAULT_DATA_ROOT = Path("data")
SCENARIO_SUFFIX = ".toml"


def data_root() -> Path:
    """``$GROWTH_DATA_ROOT`` or ``data`` (relative paths stay relative to the working directory)."""
    raw = os.environ.get(DATA_ROOT_ENV, "").strip()
    return Path(raw) if raw else DEFAULT_DATA_ROOT


def scenario_dir() -> Path:
    """The folder of the world scenarios: ``<data root>/scenarios``."""
    return data_root() / "scenarios"


def scenario_names() -> list[str]:
    """Names (file stems) of the scenarios in :func:`scenario_dir`, sorted."""
    return sorted(p.stem for p in scenario_dir().glob(f"*{SCENARIO_SUFFIX}"))


def scenario_path(scenario: str | Path) -> Path:
    """A scenario file: a path as given, or a bare name looked up in :func:`scenario_dir`.

    ``"small"`` means ``<data root>/scenarios/small.toml``; anything with a folder
    or a suffix is taken as a path.  Raises ``FileNotFoundError`` naming the
    available scenarios when a name is unknown.
    """
    path = Path(scenario)
    if path.suffix or len(path.parts) > 1:
        return path
    named = scenario_dir() / f"{path.name}{SCENARIO_SUFFIX}"
    if not named.is_file():
        raise FileNotFoundError(
            f"unknown scenario {str(scenario)!r}: no {named}; available: {scenario_names()}"
        )
    return named


def log_dir() -> Path:
    """JSON-lines logs of the jobs: ``<data root>/logs``."""
    return data_root() / "logs"


def artifacts_dir() -> Path:
    """Files a run leaves besides its SQL rows (models, scores): ``<data root>/artifacts``."""
    return data_root() / "artifacts"


def default_db_url() -> str:
    """The embedded SQLite database: ``sqlite:///<data root>/growth.db``."""
    return f"sqlite:///{(data_root() / 'growth.db').as_posix()}"
