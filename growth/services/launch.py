"""Starting the app: the streamlit command line on a free port."""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
from pathlib import Path

from growth.store import ENV_VAR


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def app_entry() -> Path:
    """The app's main script, ``Home.py`` of the installed ``app`` package."""
    spec = importlib.util.find_spec("app")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the operators' app (package 'app') is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "Home.py"


def app_command(port: int) -> list[str]:
    """The ``streamlit run`` command line of the app on ``port``."""
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(app_entry()),
        "--server.headless",
        "true",
        "--server.port",
        str(port),
        "--server.address",
        "127.0.0.1",
        "--browser.gatherUsageStats",
        "false",
    ]


def launch_app(port: int | None = None, db: str | None = None) -> int:
    """Run the app with ``streamlit run`` until it stops; returns its exit code.

    ``port``: default 8501; ``db``: store URL (sets ``GROWTH_DB_URL`` for the app).
    """
    if port is not None and not 0 < port < 65536:
        raise ValueError(f"port must be in 1..65535, got {port}")
    env = dict(os.environ)
    if db:
        env[ENV_VAR] = db
    cmd = app_command(port or 8501)
    try:
        return subprocess.call(cmd, env=env)
    except KeyboardInterrupt:
        return 130
