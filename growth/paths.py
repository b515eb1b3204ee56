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
>>> check_name("spring-2026", "campaign")
'spring-2026'
>>> check_name("../../etc", "campaign")
Traceback (most recent call last):
...
ValueError: campaign '../../etc' is not a name: 1-64 letters, digits, '_' or '-', starting with a letter or digit
"""

from __future__ import annotations

import os
import re
import stat
import tomllib
from pathlib import Path
from typing import Any

DATA_ROOT_ENV = "GROWTH_DATA_ROOT"
"""Environment variable naming the data root (default: ``data`` in the working directory)."""
DEFAULT_DATA_ROOT = Path("data")
SCENARIO_SUFFIX = ".toml"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")


def check_name(value: object, what: str, max_len: int = 64) -> str:
    """``value`` if it is a *name*: 1 to ``max_len`` letters, digits, ``_`` or ``-``,
    starting with a letter or digit; else ``ValueError`` saying so.

    Campaigns and run kinds become parts of file names (logs, run folders), so a
    name can never hold a folder separator, ``..``, markup or a control character.
    """
    rule = f"1-{max_len} letters, digits, '_' or '-', starting with a letter or digit"
    if not isinstance(value, str) or len(value) > max_len or not _NAME.fullmatch(value):
        raise ValueError(f"{what} {value!r} is not a name: {rule}")
    return value


def read_toml(path: str | Path, what: str) -> dict[str, Any]:
    """The TOML file ``path`` as a dict; errors name ``what`` and the file.

    ``FileNotFoundError`` when it does not exist; ``ValueError`` when it is not a
    regular file (a folder, a FIFO that would block), not UTF-8 or not TOML.
    """
    path = Path(path)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise FileNotFoundError(f"{what} {path} does not exist") from None
    except OSError as exc:
        raise ValueError(f"{what} {path}: cannot read it: {exc.strerror}") from None
    if not stat.S_ISREG(mode):
        kind = "a folder" if stat.S_ISDIR(mode) else "not a regular file"
        raise ValueError(f"{what} {path} is {kind}; expected a TOML file")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"{what} {path}: cannot read it: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ValueError(f"{what} {path} is not UTF-8 text; expected a TOML file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{what} {path} is not valid TOML: {exc}") from None


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
