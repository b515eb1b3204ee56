"""Careless and hostile input, tried through the command line: how is each one handled?

Usage: .venv/bin/python benchmarks/hostile_inputs.py [--jobs 2] [--only FAMILY ...]
       [--quick] [--csv hostile_inputs.csv] [--keep]

Runs a catalogue of inputs and faults through ``python -m growth ...`` (a subprocess with a
private data root and its own SQLite database; the PostgreSQL cases run when
``$GROWTH_TEST_PG_URL`` is set) and classifies each outcome:

* **well**: the expected exit code, a message that names the file, column and row (or the
  field) at fault, no traceback, nothing written half-way;
* **partly**: safe, but a wrong exit code, a traceback or a message that does not name the
  fault;
* **badly**: a crash or a hang, data written or a good run superseded, a secret printed,
  escape sequences from the data reaching the terminal, memory out of bounds.

Families: ``cells`` (every table x every column x values its kind cannot hold), ``typed``
(parquet cells beyond float32), ``tables`` (every table x missing, empty, garbage,
truncated, FIFO, folder, device, duplicated header or rows, ...), ``manifest``,
``options`` (every command's options x bad values), ``config`` (nightly TOML fields),
``data-nightly`` (the nightly job on bad datasets, a good run beside it), ``faults``
(signals, kills, a locked database, concurrent runs) and ``postgres``.  It prints one
line per case, the counts per family and in all, and writes every case to a CSV.  It is
a benchmark (a measurement of the whole product), not a test.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import os
import re
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from growth.data.io import write_dataset  # noqa: E402
from growth.data.schema import TABLES, Column  # noqa: E402
from growth.world import WorldConfig, generate_world  # noqa: E402

DATE = "2026-01-05"  # the day of the good run every nightly case starts from
SECRET = "s3cr3t-pw"
MEMORY_LIMIT = 8 * 2**30  # address space of one case: a blow-up fails instead of swapping
HOSTILE_ESCAPE = "\x1b[2J\x1b[31m"
NIGHTLY_TOML = """scenario = "small"
n_users = 300
predictor = "lightgbm"
max_train_rows = 0
[coupons]
budget = 200.0
merchant_budget = 20.0
method = "lagrangian"
[push]
time_limit_s = 5.0
max_users = 300
[install]
budget = 20000.0
pareto_points = 3
"""


@dataclass
class Result:
    """How one process ended."""

    rc: int | None
    out: str
    err: str
    seconds: float
    max_rss_mb: float
    timed_out: bool
    verdict: tuple[str, str] | None = None  # a fault's own grading (see the faults family)


@dataclass
class Case:
    """One input or fault and what a good answer to it is.

    ``argv`` may hold ``{dir}`` (the case's folder), ``{ds}`` (its copy of the dataset),
    ``{db}`` (its SQLite URL) and ``{cfg}`` (its nightly TOML).  ``names`` must appear in
    the output of a refusal; ``check`` returns a 'badly' reason for damage it finds;
    ``drive`` runs the process itself (faults).
    """

    family: str
    name: str
    argv: list[str]
    expect: frozenset[int]
    names: tuple[str, ...] = ()
    dataset: str | None = None  # "csv" or "parquet": the case gets a copy
    mutate: Callable[[Path], None] | None = None  # applied to the copy
    good_run: bool = False  # the database holds a good run of DATE first
    config: str = NIGHTLY_TOML
    timeout_s: float = 60.0
    hostile: str | None = None
    secret: str | None = None
    check: Callable[[Path, Result], str | None] | None = None
    drive: Callable[[Case, Path, dict[str, str]], Result] | None = None
    env: dict[str, str] = field(default_factory=dict)
    setup: Callable[[Path], None] | None = None  # after the files are in place
    early: bool = False  # must be refused before the job starts its stages


@dataclass
class Verdict:
    case: Case
    result: Result
    grade: str
    reason: str


# -- running one process -------------------------------------------------------------


def start(argv: list[str], folder: Path, env: dict[str, str], tag: str = "") -> subprocess.Popen:
    """``python -m growth argv`` in ``folder``, output to files (read by :func:`finish`)."""
    out = open(folder / f"stdout{tag}.txt", "wb")  # noqa: SIM115 - closed in finish()
    err = open(folder / f"stderr{tag}.txt", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "growth", *argv],
        cwd=folder,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=out,
        stderr=err,
        start_new_session=True,
    )
    resource.prlimit(proc.pid, resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    proc.files = (out, err)  # type: ignore[attr-defined]
    proc.started = time.perf_counter()  # type: ignore[attr-defined]
    return proc


def finish(proc: subprocess.Popen, folder: Path, timeout_s: float, tag: str = "") -> Result:
    """Wait for ``proc`` (kill it after ``timeout_s``); its exit code, output and peak memory."""
    timed_out = False
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.perf_counter() - proc.started > timeout_s:  # type: ignore[attr-defined]
            timed_out = True
            os.killpg(proc.pid, signal.SIGKILL)
            pid, status, usage = os.wait4(proc.pid, 0)
            break
        time.sleep(0.05)
    proc.returncode = os.waitstatus_to_exitcode(status)
    for handle in proc.files:  # type: ignore[attr-defined]
        handle.close()
    return Result(
        rc=None if timed_out else proc.returncode,
        out=(folder / f"stdout{tag}.txt").read_text(errors="replace"),
        err=(folder / f"stderr{tag}.txt").read_text(errors="replace"),
        seconds=time.perf_counter() - proc.started,  # type: ignore[attr-defined]
        max_rss_mb=usage.ru_maxrss / 1024,
        timed_out=timed_out,
    )


def run(
    argv: list[str], folder: Path, env: dict[str, str], timeout_s: float, tag: str = ""
) -> Result:
    return finish(start(argv, folder, env, tag), folder, timeout_s, tag)


def wait_for(folder: Path, text: str, timeout_s: float, tag: str = "") -> bool:
    """Wait until the process writing ``stdout<tag>.txt`` in ``folder`` prints ``text``."""
    end = time.perf_counter() + timeout_s
    path = folder / f"stdout{tag}.txt"
    while time.perf_counter() < end:
        if path.exists() and text in path.read_text(errors="replace"):
            return True
        time.sleep(0.1)
    return False


# -- the world every case starts from --------------------------------------------------


@dataclass
class Base:
    """A valid dataset in both formats and a database holding one good nightly run."""

    root: Path
    folders: dict[str, Path]
    good_db: Path
    good_rss_mb: float


def build_base(root: Path) -> Base:
    world = generate_world(WorldConfig(n_users=300, seed=11))
    folders = {
        fmt: write_dataset(world.dataset, root / f"base-{fmt}", format=fmt)
        for fmt in ("csv", "parquet")
    }
    folder = root / "good-run"
    folder.mkdir()
    env = environment(folder)
    (folder / "nightly.toml").write_text(NIGHTLY_TOML)
    argv = ["nightly", "--config", "nightly.toml", "--date", DATE, "--db", db_url(folder)]
    result = run(argv, folder, env, 600)
    if result.rc != 0:
        raise SystemExit(f"the good run failed:\n{result.out}\n{result.err}")
    return Base(root, folders, folder / "growth.db", result.max_rss_mb)


def db_url(folder: Path) -> str:
    return f"sqlite:///{folder / 'growth.db'}"


def environment(folder: Path) -> dict[str, str]:
    """The case's environment: its own data root (the repository's scenarios) and database."""
    data = folder / "data"
    data.mkdir(exist_ok=True)
    if not (data / "scenarios").exists():
        (data / "scenarios").symlink_to(REPO / "data" / "scenarios")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GROWTH_")}
    env.update(
        GROWTH_DATA_ROOT=str(data),
        GROWTH_DB_URL=db_url(folder),
        PYTHONPATH=str(REPO),
        OMP_NUM_THREADS="1",
        COLUMNS="200",
    )
    return env


# -- judging an outcome --------------------------------------------------------------


def flat(text: str) -> str:
    """Output with whitespace runs collapsed (a long message may be wrapped)."""
    return " ".join(text.split())


def grade(case: Case, folder: Path, result: Result, damage: str | None) -> tuple[str, str]:
    """('well' | 'partly' | 'badly', why) for how ``case`` ended."""
    text = result.out + result.err
    if result.timed_out:
        return "badly", f"hang: still running after {case.timeout_s:.0f} s (killed)"
    if case.secret and case.secret in text:
        return "badly", "a password was printed"
    if case.hostile and case.hostile in text:
        return "badly", "escape sequences from the input reached the terminal"
    if damage:
        return "badly", damage
    if result.verdict is not None:  # a fault graded by its drive (a SIGKILL ends with -9)
        return result.verdict
    if result.rc not in (0, 1, 2, 3):
        return "badly", f"crash: exit {result.rc} ({flat(result.err)[-120:]})"
    traceback = "Traceback" in result.err
    if result.rc not in case.expect:
        note = " with a traceback" if traceback else ""
        return "partly", f"exit {result.rc}{note}, expected {sorted(case.expect)}: " + flat(
            result.err
        )[-160:]
    if traceback:
        return "partly", "a traceback: " + flat(result.err)[-160:]
    if result.rc != 0 and not result.err.strip():
        return "partly", "no message on stderr"
    missing = [n for n in case.names if flat(n) not in flat(text)]
    if result.rc != 0 and missing:
        return "partly", f"the message does not name {missing}: " + flat(result.err)[-160:]
    if case.early and result.rc != 0 and "stage 1/" in result.out:
        return "partly", "refused only after the job had started (data read, models trained)"
    return "well", ""


def snapshot(path: Path) -> dict[str, tuple[int, int]]:
    """Name -> (size, mtime) of every file under ``path`` (what a read-only command must keep)."""
    if not path.exists():
        return {}
    if path.is_file() or path.is_fifo():
        return {str(path): (0, 0)}
    return {
        str(p): (p.lstat().st_size, p.lstat().st_mtime_ns)
        for p in path.rglob("*")
        if not p.is_dir() or p.is_symlink()
    }


def db_damage(folder: Path, rc: int | None, good_run: bool) -> str | None:
    """A refused or failed command must leave the database as it found it."""
    path = folder / "growth.db"
    if rc in (None, 0) or not path.exists():
        return None
    with sqlite3.connect(path) as db:
        try:
            runs = db.execute("select id, status, superseded_by from runs order by id").fetchall()
        except sqlite3.DatabaseError:
            return None
    if good_run and runs and (runs[0][1] != "succeeded" or runs[0][2] is not None):
        return f"the good run is now {runs[0][1]!r}, superseded by {runs[0][2]}"
    stored = [r[0] for r in runs[1 if good_run else 0 :] if r[1] == "succeeded"]
    if stored:
        return f"exit {rc}, yet run(s) {stored} were stored as succeeded"
    return None


def artifacts_damage(folder: Path, before: set[str], rc: int | None) -> str | None:
    """A failed command must leave no run folder, except those of runs that succeeded
    (a fault's drive reruns the job, whose folder is legitimate)."""
    runs = folder / "data" / "artifacts" / "runs"
    new = {p.name for p in runs.iterdir()} - before if runs.exists() else set()
    if rc in (None, 0) or not new:
        return None
    left = sorted(new - succeeded_folders(folder, new))
    return f"a failed command left artifacts {left}" if left else None


def succeeded_folders(folder: Path, names: set[str]) -> set[str]:
    """The run folders (``<date>-<campaign>-run<id>-<hex>``) of runs stored as succeeded."""
    if not (folder / "growth.db").exists():
        return set()
    try:
        ids = {r[0] for r in db_rows(folder, "select id from runs where status = 'succeeded'")}
    except sqlite3.DatabaseError:
        return set()
    found = {name: re.search(r"-run(\d+)-", name) for name in names}
    return {name for name, m in found.items() if m is not None and int(m.group(1)) in ids}


def strays(root: Path) -> list[str]:
    """Files a case wrote outside its own folder (a path that escaped)."""
    allowed = {"cases", "base-csv", "base-parquet", "good-run"}
    return sorted(p.name for p in root.iterdir() if p.name not in allowed)


# -- one case, start to end ----------------------------------------------------------


def prepare(case: Case, base: Base, folder: Path) -> dict[str, str]:
    folder.mkdir(parents=True)
    env = environment(folder)
    env.update(case.env)
    if case.dataset is not None:
        shutil.copytree(base.folders[case.dataset], folder / "ds")
        if case.mutate is not None:
            case.mutate(folder / "ds")
    if case.good_run:
        shutil.copy(base.good_db, folder / "growth.db")
    (folder / "nightly.toml").write_text(case.config)
    if case.setup is not None:
        case.setup(folder)
    return env


def fill(argv: list[str], folder: Path) -> list[str]:
    keys = {"{dir}": str(folder), "{ds}": str(folder / "ds"), "{db}": db_url(folder)}
    keys["{cfg}"] = str(folder / "nightly.toml")
    out = []
    for arg in argv:
        for key, value in keys.items():
            arg = arg.replace(key, value)
        out.append(arg)
    return out


def judge(case: Case, base: Base, folder: Path) -> Verdict:
    try:
        env = prepare(case, base, folder)
    except Exception as exc:  # the harness could not build the case: say so, go on
        reason = f"could not prepare the case: {exc!r}"[:200]
        return Verdict(case, Result(None, "", reason, 0.0, 0.0, False), "skipped", reason)
    before = snapshot(folder / "ds")
    artifacts = folder / "data" / "artifacts" / "runs"
    had = {p.name for p in artifacts.iterdir()} if artifacts.exists() else set()
    if case.drive is not None:
        result = case.drive(case, folder, env)
    else:
        result = run(fill(case.argv, folder), folder, env, case.timeout_s)
    damage = None
    if snapshot(folder / "ds") != before:
        damage = "the dataset folder was changed"
    if case.drive is None:  # a drive judges the database itself, before its own rerun
        damage = damage or db_damage(folder, result.rc, case.good_run)
    damage = damage or artifacts_damage(folder, had, result.rc)
    if case.check is not None and damage is None:
        damage = case.check(folder, result)
    grade_, reason = grade(case, folder, result, damage)
    return Verdict(case, result, grade_, reason)


# -- families of cases ---------------------------------------------------------------

MAX_TOKEN = 2**24 - 1
CELL_VALUES: dict[str, list[str]] = {
    "int": ["abc", "1.5", "-1", "", "99999999999999999999", "1e308"],
    "float": ["abc", "", "inf", "-1", "1e308", "3.5e38"],
    "str": ["", "[/x]", HOSTILE_ESCAPE + "x", "\u202eevil"],
    "bool": ["maybe", "", "2"],
    "datetime": ["yesterday", "-1", "9999-12-31", "2024-02-30"],
    "multi": ["1||2", "-1", "abc", "99999999999999999999", "16777216", "6000"],
}
RULE_COLUMNS = {
    "coupons": {"option_id", "type", "threshold", "merchant_id"},
    "channel_history": {"installs", "logins", "retained"},
    "exposures": {"domain", "treatment", "label"},
}
"""Columns that rules across rows or tables read: a valid value may still break a rule."""


def value_fits(col: Column, text: str) -> bool:
    """Whether ``text`` is a value the column's declared kind, bounds and choices allow."""
    missing = text in ("", "nan")
    if col.kind in ("int", "float", "bool", "datetime") and missing:
        return col.nullable
    if col.kind == "int":
        try:
            number: float = int(text)
        except ValueError:
            return False
        inside = -(2**63) <= number < 2**63
    elif col.kind == "float":
        try:
            number = float(text)
        except ValueError:
            return False
        inside = abs(number) <= 1e30  # features: float32 with room; money below has 1e9
    elif col.kind == "bool":
        return text.lower() in ("true", "false", "0", "1", "t", "f", "yes", "no")
    elif col.kind == "datetime":
        try:
            year = time.strptime(text[:10], "%Y-%m-%d").tm_year
        except ValueError:
            return False
        return 1678 <= year <= 2261
    elif col.kind == "multi":
        tokens = text.split("|") if text else []
        return all(t.isdigit() and int(t) <= MAX_TOKEN for t in tokens)
    else:
        return col.choices is None or text in col.choices
    low = col.min if col.min is not None else -float("inf")
    high = col.max if col.max is not None else float("inf")
    return inside and low <= number <= high


def set_csv_cell(folder: Path, table: str, column: str, text: str) -> None:
    """Set the first data row's ``column`` of ``table``.csv to ``text`` (quoting as CSV does)."""
    path = folder / f"{table}.csv"
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    rows[1][rows[0].index(column)] = text
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(rows)


def table_columns(base: Base, table: str) -> list[Column]:
    """The schema's columns of ``table`` in the base dataset, plus users' feature kinds."""
    schema = TABLES[table]
    header = (base.folders["csv"] / f"{table}.csv").read_text().splitlines()[0].split(",")
    cols = [c for c in (*schema.columns, *schema.optional_columns) if c.name in header]
    if table == "users":
        numeric = next(h for h in header if h.startswith("src_") and not h.endswith("_seq"))
        cols.append(Column(numeric, "float", nullable=True))
        cols += [Column(h, "multi") for h in header if h.endswith(("_seq", "_tags"))]
    return cols


def cell_case(family: str, table: str, col: Column, value: object, fmt: str, mutate) -> Case:
    """One cell of ``table`` set to ``value``: refused naming file, column and row when the
    column's kind, bounds or choices forbid it; when they allow it but the column is a key
    or feeds a rule across rows, a refusal may name another file."""
    fits = value_fits(col, str(value))
    cross = col.unique or col.references or col.name in RULE_COLUMNS.get(table, ())
    expect = {0, 2} if fits and cross else {0} if fits else {2}
    text = str(value)
    return Case(
        family,
        f"{table}.{col.name} = {text[:24]!r}" + (" (parquet)" if fmt == "parquet" else ""),
        ["validate", "{ds}"],
        frozenset(expect),
        names=("/ds/",) if fits else (f"{table}.{fmt}", f"'{col.name}'", "row 0"),
        dataset=fmt,
        mutate=mutate,
        hostile=HOSTILE_ESCAPE if HOSTILE_ESCAPE in text else None,
    )


def cell_cases(base: Base) -> Iterator[Case]:
    """Every table x every column x values its kind cannot (or can barely) hold."""
    for table in TABLES:
        for col in table_columns(base, table):
            for text in CELL_VALUES[col.kind]:
                edit = lambda f, t=table, c=col.name, v=text: set_csv_cell(f, t, c, v)  # noqa: E731
                yield cell_case("cells", table, col, text, "csv", edit)


def set_parquet_cell(folder: Path, table: str, column: str, value: object) -> None:
    import pandas as pd

    path = folder / f"{table}.parquet"
    frame = pd.read_parquet(path)
    if pd.api.types.is_float_dtype(frame[column].dtype) or isinstance(value, float):
        frame[column] = frame[column].astype("float64")
        value = float(value)  # type: ignore[arg-type]
    frame.loc[0, column] = value
    frame.to_parquet(path, index=False)


def typed_cases(base: Base) -> Iterator[Case]:
    """Parquet cells of the right type but beyond what float32 or int64 carry."""
    for table in TABLES:
        for col in table_columns(base, table):
            if col.kind == "float":
                values: list[object] = [1e308, float("inf"), -3.5e38]
            elif col.kind == "int":
                values = [2**63 - 1, -1]
            else:
                continue
            for value in values:
                edit = lambda f, t=table, c=col.name, v=value: set_parquet_cell(f, t, c, v)  # noqa: E731
                yield cell_case("typed", table, col, value, "parquet", edit)


def _replace(path: Path, make: Callable[[Path], None]) -> None:
    path.unlink()
    make(path)


def _header_only(path: Path) -> None:
    _frame_edit(path, lambda frame: frame.iloc[:0])


def _frame_edit(path: Path, edit: Callable) -> None:
    """Rewrite a table through pandas, and its row count in the manifest (not a truncation)."""
    import json

    import pandas as pd

    if path.suffix == ".csv":
        frame = edit(pd.read_csv(path, dtype=str, keep_default_na=False))
        frame.to_csv(path, index=False)
    else:
        frame = edit(pd.read_parquet(path))
        frame.to_parquet(path, index=False)
    manifest = path.with_name("manifest.json")
    data = json.loads(manifest.read_text())
    data["tables"][path.stem] = len(frame)
    manifest.write_text(json.dumps(data))


def _dup_header(path: Path) -> None:
    lines = path.read_text().splitlines()
    names = lines[0].split(",")
    names[-1] = names[0]
    path.write_text("\n".join([",".join(names), *lines[1:]]) + "\n")


TABLE_FAULTS: dict[str, tuple[Callable[[Path], None], str]] = {
    "missing": (lambda p: p.unlink(), "required"),
    "header only": (_header_only, "empty"),
    "garbage bytes": (lambda p: p.write_bytes(b"\x00\x01garbage\xff\xfe\n" * 3), "bad"),
    "truncated": (lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]), "bad"),
    "FIFO": (lambda p: _replace(p, lambda q: os.mkfifo(q)), "bad"),
    "folder": (lambda p: _replace(p, lambda q: q.mkdir()), "bad"),
    "device /dev/zero": (lambda p: _replace(p, lambda q: q.symlink_to("/dev/zero")), "bad"),
    "zero bytes": (lambda p: p.write_bytes(b""), "bad"),
    "duplicated header": (_dup_header, "column"),
    "first column dropped": (lambda p: _frame_edit(p, lambda f: f.iloc[:, 1:]), "column"),
    "unknown column added": (lambda p: _frame_edit(p, lambda f: f.assign(zz_note="x")), "fine"),
    "rows doubled": (lambda p: _frame_edit(p, lambda f: _doubled(f)), "unique"),
    "non-UTF-8 bytes": (lambda p: p.write_bytes(p.read_bytes() + b"\xff\xfe,\xc3(\n"), "bad"),
    "other table's file": (lambda p: _replace(p, lambda q: q.symlink_to(_other(q))), "bad"),
}
PLANNED = {"users", "items", "coupons", "candidates", "exposures"}


def _doubled(frame):
    import pandas as pd

    return pd.concat([frame, frame], ignore_index=True)


def _other(path: Path) -> Path:
    other = "items" if path.stem == "users" else "users"
    return path.with_name(f"{other}{path.suffix}")


def table_cases(base: Base) -> Iterator[Case]:
    """Every table x every way a file can be missing, empty, broken or not a file."""
    for fmt in ("csv", "parquet"):
        for table, schema in TABLES.items():
            for fault, (make, kind) in TABLE_FAULTS.items():
                if fmt == "parquet" and fault in ("duplicated header", "non-UTF-8 bytes"):
                    continue
                file = f"{table}.{fmt}"
                unique = any(c.unique for c in schema.columns)
                expect = {
                    "required": {2},
                    "empty": {2} if table in PLANNED else {0, 2},
                    "bad": {2},
                    "column": {2},
                    "fine": {0},
                    "unique": {2} if unique else {0},
                }[kind]
                names = (file, f"'{schema.columns[0].name}'") if kind == "column" else (file,)
                yield Case(
                    "tables",
                    f"{file}: {fault}",
                    ["validate", "{ds}"],
                    frozenset(expect),
                    names=names,
                    dataset=fmt,
                    mutate=lambda f, m=make, n=file: m(f / n),
                    timeout_s=30.0,
                )


def _manifest(edit: Callable[[dict], object]) -> Callable[[Path], None]:
    import json

    def apply(folder: Path) -> None:
        path = folder / "manifest.json"
        out = edit(json.loads(path.read_text()))
        path.write_bytes(out if isinstance(out, bytes) else json.dumps(out).encode())

    return apply


def manifest_cases(base: Base) -> Iterator[Case]:
    edits: dict[str, tuple[Callable[[Path], None], set[int]]] = {
        "removed": (lambda f: (f / "manifest.json").unlink(), {0}),
        "not JSON": (_manifest(lambda m: b"{not json"), {2}),
        "not UTF-8": (_manifest(lambda m: b'{"name": "\xff"}'), {2}),
        "a list": (_manifest(lambda m: []), {2}),
        "future version": (_manifest(lambda m: {**m, "schema_version": 99}), {2}),
        "format xml": (_manifest(lambda m: {**m, "format": "xml"}), {2}),
        "tables not a map": (_manifest(lambda m: {**m, "tables": "users"}), {2}),
        "row count off": (_manifest(lambda m: {**m, "tables": {**m["tables"], "users": 7}}), {2}),
        "required table unlisted": (
            _manifest(
                lambda m: {**m, "tables": {k: v for k, v in m["tables"].items() if k != "items"}}
            ),
            {2},
        ),
        "FIFO": (lambda f: _replace(f / "manifest.json", lambda q: os.mkfifo(q)), {2}),
        "folder": (lambda f: _replace(f / "manifest.json", lambda q: q.mkdir()), {2}),
    }
    for name, (mutate, expect) in edits.items():
        yield Case(
            "manifest",
            f"manifest.json: {name}",
            ["validate", "{ds}"],
            frozenset(expect),
            names=("manifest.json",) if expect == {2} else (),
            dataset="parquet",
            mutate=mutate,
            timeout_s=30.0,
        )


# -- command-line options and the nightly config --------------------------------------

NIGHTLY = ["nightly", "--config", "{cfg}", "--date", "2026-02-01", "--db", "{db}"]


def runs_unchanged(folder: Path, result: Result) -> str | None:
    """The good run is still there, succeeded, and no table was dropped."""
    with sqlite3.connect(folder / "growth.db") as db:
        try:
            rows = db.execute("select id, status from runs").fetchall()
        except sqlite3.DatabaseError as exc:
            return f"the runs table is gone ({exc})"
    if rows != [(1, "succeeded")]:
        return f"a query changed the runs table: {rows}"
    return None


def no_strays(root: Path) -> Callable[[Path, Result], str | None]:
    def check(folder: Path, result: Result) -> str | None:
        found = strays(root) + [p.name for p in (root / "cases").iterdir() if "escape" in p.name]
        return f"files written outside the data root: {found}" if found else None

    return check


def nothing_written(sub: str) -> Callable[[Path, Result], str | None]:
    def check(folder: Path, result: Result) -> str | None:
        out = folder / sub
        files = sorted(p.name for p in out.iterdir()) if out.is_dir() else []
        return f"a failed command left files {files}" if result.rc and files else None

    return check


def hostile_operator(folder: Path) -> None:
    with sqlite3.connect(folder / "growth.db") as db:
        db.execute("update runs set operator = ?, campaign = ?", (HOSTILE_ESCAPE + "op", "[/x]"))


def option_cases(root: Path) -> Iterator[Case]:
    """Every command's options x careless values: bad input exits 2 naming the option."""

    def case(name: str, argv: list[str], expect: Iterable[int], *names: str, **kw) -> Case:
        return Case("options", name, argv, frozenset(expect), names=names, **kw)

    yield case("validate: no such folder", ["validate", "{dir}/nowhere"], [2], "nowhere")
    yield case("validate: a file", ["validate", "{cfg}"], [2], "nightly.toml")
    yield case("validate: empty path", ["validate", ""], [2])
    yield case("validate: 300-character name", ["validate", "x" * 300], [2])
    yield case("validate: markup as path", ["validate", "[/x]"], [2], "[/x]")
    yield case(
        "validate: escapes as path", ["validate", HOSTILE_ESCAPE], [2], hostile=HOSTILE_ESCAPE
    )
    yield case("validate: no argument", ["validate"], [2])
    yield case("validate: extra argument", ["validate", "{ds}", "more"], [2], dataset="csv")
    yield case("unknown command", ["frobnicate"], [2])
    gen = ["generate", "{dir}/out", "--users", "40"]
    for label, extra, names in [
        ("--format xml", ["--format", "xml"], ("xml",)),
        ("--users 0", ["--users", "0"], ("n_users",)),
        ("--users -5", ["--users", "-5"], ("n_users",)),
        ("--users abc", ["--users", "abc"], ("users",)),
        ("--seed -1", ["--seed", "-1"], ("seed",)),
        ("--seed abc", ["--seed", "abc"], ("seed",)),
        ("--scenario nosuch", ["--scenario", "nosuch"], ("nosuch",)),
        ("--scenario a folder", ["--scenario", "{dir}"], ()),
        ("--scenario not a scenario", ["--scenario", "{cfg}"], ("nightly.toml",)),
        ("--scenario markup", ["--scenario", "[/x]"], ("[/x]",)),
    ]:
        yield case(f"generate {label}", gen + extra, [2], *names, check=nothing_written("out"))
    yield case("generate into a file", ["generate", "{cfg}", "--users", "40"], [2], "nightly.toml")
    yield case(
        "generate --users 10**12",
        ["generate", "{dir}/out", "--users", "1000000000000"],
        [2],
        check=nothing_written("out"),
        timeout_s=60.0,
    )
    for limit in ("0", "-1", "abc", "99999999999999999999"):
        yield case(  # with a database: the option, not a missing store, must be what is refused
            f"runs --limit {limit}",
            ["runs", "--limit", limit, "--db", "{db}"],
            [2],
            "limit",
            good_run=True,
        )
    bad_dbs = {
        "no URL": ("notaurl", [2]),
        "empty URL": ("", [2]),
        "a folder": ("sqlite:///{dir}", [1, 2]),
        "not a database": ("sqlite:///{cfg}", [1, 2]),
        "unknown driver": ("mysql://u:p@127.0.0.1:1/x", [1, 2]),
        "unreachable, with a password": (f"postgresql://u:{SECRET}@127.0.0.1:1/db", [1, 2]),
    }
    for label, (url, expect) in bad_dbs.items():
        for command in (["runs"], ["query", "SELECT 1"], NIGHTLY[:-2]):
            yield case(
                f"{command[0]} --db {label}",
                [*command, "--db", url],
                expect,
                secret=SECRET,
                early=command[0] == "nightly",
            )
    queries = {
        "two statements": "SELECT 1; DELETE FROM runs",
        "a delete": "DELETE FROM runs",
        "a drop": "DROP TABLE runs",
        "WITH ... DELETE": "WITH x AS (SELECT 1) DELETE FROM runs",
        "ATTACH": "ATTACH DATABASE 'stolen.db' AS s",
        "PRAGMA writable_schema": "PRAGMA writable_schema = 1",
    }
    for label, sql in queries.items():
        yield case(
            f"query: {label}",
            ["query", sql, "--db", "{db}"],
            [1, 2],
            good_run=True,
            check=runs_unchanged,
        )
    esc = "SELECT char(27) || '[2J' || char(27) || '[31m' AS x"
    yield case(
        "query: escapes in a result",
        ["query", esc, "--db", "{db}"],
        [0],
        hostile=HOSTILE_ESCAPE,
        good_run=True,  # a query needs a store database to run on
    )
    yield case(
        "query: markup in a result",
        ["query", "SELECT '[/x]' AS a", "--db", "{db}"],
        [0],
        good_run=True,
    )
    yield case(
        "runs: escapes and markup stored",
        ["runs", "--db", "{db}"],
        [0],
        good_run=True,
        setup=hostile_operator,
        hostile=HOSTILE_ESCAPE,
    )
    yield case(
        "query --param =1", ["query", "SELECT 1", "--param", "=1", "--db", "{db}"], [2], "--param"
    )
    yield case(
        "query --param a", ["query", "SELECT 1", "--param", "a", "--db", "{db}"], [2], "--param"
    )
    yield case("query: empty", ["query", "", "--db", "{db}"], [2])
    yield case("query: unknown example", ["query", "no_such_example", "--db", "{db}"], [2])
    for port in ("0", "-1", "70000", "abc"):
        yield case(f"app --port {port}", ["app", "--port", port], [2], "port", timeout_s=30.0)
    nightly_options = [
        ("--date 2026-02-30", ["--date", "2026-02-30"], ("date",)),
        ("--date x", ["--date", "x"], ("date",)),
        ("--users 5", ["--users", "5"], ("n_users",)),
        ("--users abc", ["--users", "abc"], ("users",)),
        ("--budget -1", ["--budget", "-1"], ("budget",)),
        ("--budget inf", ["--budget", "inf"], ("budget",)),
        ("--budget nan", ["--budget", "nan"], ("budget",)),
        ("--budget 1e308", ["--budget", "1e308"], ("budget",)),
        ("--merchant-budget -5", ["--merchant-budget", "-5"], ("merchant_budget",)),
        ("--predictor nosuch", ["--predictor", "nosuch"], ("nosuch",)),
        ("--predictor markup", ["--predictor", "[/x]"], ("[/x]",)),
        ("--max-train-rows -1", ["--max-train-rows", "-1"], ("max_train_rows",)),
        ("--campaign a/b", ["--campaign", "a/b"], ("campaign",)),
        ("--campaign markup", ["--campaign", "[/x]"], ("campaign",)),
        ("--campaign empty", ["--campaign", ""], ("campaign",)),
        ("--campaign 200 chars", ["--campaign", "c" * 200], ("campaign",)),
        ("--operator escapes", ["--operator", HOSTILE_ESCAPE], ("operator",)),
        ("--config a folder", ["--config", "{dir}"], ()),
        ("--config missing", ["--config", "{dir}/missing.toml"], ("missing.toml",)),
        ("--scenario a folder", ["--scenario", "{dir}"], ()),
        ("--scenario nosuch", ["--scenario", "nosuch"], ("nosuch",)),
        ("--data-dir missing", ["--data-dir", "{dir}/nowhere"], ("nowhere",)),
        ("--log-dir a file", ["--log-dir", "{cfg}"], ()),
    ]
    for label, extra, names in nightly_options:
        hostile = HOSTILE_ESCAPE if HOSTILE_ESCAPE in extra else None
        yield case(
            f"nightly {label}",
            [*NIGHTLY, *extra],
            [0, 2] if hostile else [2],  # escapes may be stored, never printed raw
            *names,
            early=True,
            hostile=hostile,
            timeout_s=180.0,
        )
    yield case(
        "nightly --campaign ../../../escape",
        [*NIGHTLY, "--campaign", "../../../../escape-campaign"],
        [2],
        "campaign",
        early=True,
        check=no_strays(root),
        timeout_s=180.0,
    )


CONFIG_EDITS: dict[str, tuple[str, object, str]] = {
    "min_coverage 1.5": ("coupons.min_coverage.new", 1.5, "min_coverage"),
    "min_coverage of an unknown segment": ("coupons.min_coverage.vip", 0.3, "vip"),
    "unknown coupon method": ("coupons.method", "bogus", "method"),
    "coupon budget inf": ("coupons.budget", float("inf"), "budget"),
    "coupon budget nan": ("coupons.budget", float("nan"), "budget"),
    "coupon budget -1": ("coupons.budget", -1.0, "budget"),
    "type budget of an unknown type": ("coupons.type_budgets.bogus", 5.0, "bogus"),
    "type budget -1": ("coupons.type_budgets.red_packet", -1.0, "red_packet"),
    "push fatigue_cap -1": ("push.fatigue_cap", -1, "fatigue_cap"),
    "push capacity_share 2": ("push.capacity_share", 2.0, "capacity_share"),
    "push time_limit_s inf": ("push.time_limit_s", float("inf"), "time_limit_s"),
    "push time_limit_s 0": ("push.time_limit_s", 0.0, "time_limit_s"),
    "install objective bogus": ("install.objective", "bogus", "objective"),
    "install budget -1": ("install.budget", -1.0, "budget"),
    "install pareto_points 0": ("install.pareto_points", 0, "pareto_points"),
    "holdout_fraction 0.9": ("holdout_fraction", 0.9, "holdout_fraction"),
    "torch_threads 0": ("torch_threads", 0, "torch_threads"),
    "unknown key": ("bogus_key", 1, "bogus_key"),
    "campaign_date not a date": ("campaign_date", "x", "campaign_date"),
    "predictor nosuch": ("predictor", "nosuch", "nosuch"),
    "campaign with a slash": ("campaign", "a/b", "campaign"),
    "operator with escapes": ("operator", HOSTILE_ESCAPE, "operator"),
}


def toml_text(data: dict, prefix: str = "") -> str:
    """``data`` as TOML (scalars first, then one table per nested dict)."""
    import json
    import math

    def value(v: object) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, float) and not math.isfinite(v):
            return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")
        return json.dumps(v) if isinstance(v, str) else repr(v)

    lines = [f"{k} = {value(v)}" for k, v in data.items() if not isinstance(v, dict)]
    text = "\n".join(lines) + "\n" if lines else ""
    for k, v in data.items():
        if isinstance(v, dict):
            text += f"[{prefix}{k}]\n" + toml_text(v, f"{prefix}{k}.")
    return text


def edited_config(path: str, new: object) -> str:
    """The nightly TOML with the dotted ``path`` set to ``new``."""
    import tomllib

    data = tomllib.loads(NIGHTLY_TOML)
    *parents, key = path.split(".")
    node = data
    for name in parents:
        node = node.setdefault(name, {})
    node[key] = new
    return toml_text(data)


def config_cases() -> Iterator[Case]:
    """Careless nightly settings: refused (exit 2, naming the field) before any data is read."""
    edits = {
        label: (edited_config(path, v), name) for label, (path, v, name) in CONFIG_EDITS.items()
    }
    edits["not TOML"] = ("this is [ not toml\n", "nightly.toml")
    for label, (text, name) in edits.items():
        argv = list(NIGHTLY)
        if label.startswith("campaign_date"):  # --date would override the file's value
            del argv[argv.index("--date") : argv.index("--date") + 2]
        yield Case(
            "config",
            f"nightly.toml: {label}",
            argv,
            frozenset({0, 2} if HOSTILE_ESCAPE in text else {2}),
            names=(name,),
            config=text,
            early=HOSTILE_ESCAPE not in text,
            timeout_s=180.0,
            hostile=HOSTILE_ESCAPE if HOSTILE_ESCAPE in text else None,
        )


# -- the nightly job on bad datasets, beside a good run ------------------------------

DATA_NIGHTLY = [
    "nightly",
    "--config",
    "{cfg}",
    "--data-dir",
    "{ds}",
    "--date",
    DATE,
    "--db",
    "{db}",
]


def _column(table: str, column: str, value: str) -> Callable[[Path], None]:
    return lambda folder: _frame_edit(
        folder / f"{table}.csv", lambda f: f.assign(**{column: value})
    )


def _memory_bound(base: Base) -> Callable[[Path, Result], str | None]:
    def check(folder: Path, result: Result) -> str | None:
        limit = 1.5 * base.good_rss_mb + 300
        if result.max_rss_mb > limit:
            return (
                f"peak memory {result.max_rss_mb:,.0f} MB (the good run: {base.good_rss_mb:,.0f})"
            )
        return None

    return check


def data_nightly_cases(base: Base) -> Iterator[Case]:
    """The nightly job on a dataset that validates badly or plans nothing: refused, the day's
    good run untouched; odd but valid data runs within the good run's memory."""
    refusals: dict[str, tuple[Callable[[Path], None], tuple[str, ...]]] = {
        "candidates header only": (
            lambda f: _header_only(f / "candidates.csv"),
            ("candidates.csv",),
        ),
        "exposures header only": (lambda f: _header_only(f / "exposures.csv"), ("exposures.csv",)),
        "every exposure untreated": (_column("exposures", "treatment", "none"), ("'treatment'",)),
        "every exposure treated": (
            lambda f: _frame_edit(
                f / "exposures.csv",
                lambda x: x.assign(treatment=x["treatment"].replace("none", "rp_3")),
            ),
            ("'treatment'",),
        ),
        "no target-domain exposure": (_column("exposures", "domain", "source"), ("'domain'",)),
        "no conversion": (_column("exposures", "label", "0"), ("'label'",)),
        "order value 1e308": (
            lambda f: set_csv_cell(f, "exposures", "order_value", "1e308"),
            ("exposures.csv", "'order_value'", "row 0"),
        ),
        "price 1e308": (lambda f: set_csv_cell(f, "items", "price", "1e308"), ("'price'", "row 0")),
        "coupon value 1e12": (
            lambda f: set_csv_cell(f, "coupons", "face_value", "1e12"),
            ("'face_value'", "row 0"),
        ),
        "spend 1e308": (
            lambda f: set_csv_cell(f, "channel_history", "spend", "1e308"),
            ("'spend'", "row 0"),
        ),
        "feature 3.5e38": (
            lambda f: set_csv_cell(f, "users", "src_cat_share_0", "3.5e38"),
            ("'src_cat_share_0'", "row 0"),
        ),
        "token beyond int64": (
            lambda f: set_csv_cell(f, "users", "tgt_click_seq", "1|99999999999999999999"),
            ("'tgt_click_seq'", "row 0"),
        ),
        "items.csv a FIFO": (
            lambda f: _replace(f / "items.csv", lambda q: os.mkfifo(q)),
            ("items.csv",),
        ),
        "users.csv header twice": (lambda f: _dup_header(f / "users.csv"), ("users.csv",)),
    }
    for label, (mutate, names) in refusals.items():
        yield Case(
            "data-nightly",
            f"nightly --data-dir: {label}",
            list(DATA_NIGHTLY),
            frozenset({2}),
            names=names,
            dataset="csv",
            mutate=mutate,
            good_run=True,
            early=True,
            timeout_s=240.0,
        )
    for token in ("6000", "100000", "16777215"):
        yield Case(
            "data-nightly",
            f"nightly --data-dir: one token {token}",
            list(DATA_NIGHTLY),
            frozenset({0}),
            dataset="csv",
            mutate=lambda f, t=token: set_csv_cell(f, "users", "tgt_click_seq", f"1|{t}"),
            good_run=True,
            check=_memory_bound(base),
            timeout_s=400.0,
        )


# -- faults: signals, kills, locks, concurrent runs ----------------------------------

FAULT_ARGV = ["nightly", "--config", "{cfg}", "--date", "2026-03-01", "--db", "{db}"]


def db_rows(folder: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(folder / "growth.db", timeout=60) as db:
        return db.execute(sql).fetchall()


def rerun(case: Case, folder: Path, env: dict[str, str]) -> Result:
    return run(fill(case.argv, folder), folder, env, 400, tag="-rerun")


def drive_signal(sig: signal.Signals) -> Callable[[Case, Path, dict[str, str]], Result]:
    """Stop the job with ``sig`` while it trains; the run must end 'failed', the lease free,
    and the next run must start at once."""

    def drive(case: Case, folder: Path, env: dict[str, str]) -> Result:
        proc = start(fill(case.argv, folder), folder, env)
        if not wait_for(folder, "stage 2/", 240):
            result = finish(proc, folder, 1)
            result.verdict = ("skipped", "the job never reached its training stage")
            return result
        os.kill(proc.pid, sig)
        result = finish(proc, folder, 120)
        # the fault's run comes after the good run of DATE the database starts with
        runs = db_rows(folder, "select status from runs order by id")[1:]
        locks = db_rows(folder, "select pid from run_locks")
        again = rerun(case, folder, env)
        after = db_rows(folder, "select status from runs order by id")[1:2]
        state = f"exit {result.rc}, runs {runs}, lease {'held' if locks else 'free'}, "
        state += f"rerun exit {again.rc}, then the run is {after}"
        if again.rc != 0 or after != [("failed",)]:
            result.verdict = ("badly", f"after {sig.name} the next run did not recover: {state}")
        elif sig == signal.SIGKILL:  # cannot be handled: the next run must clean up after it
            killed = result.rc == -signal.SIGKILL and runs == [("running",)] and locks
            result.verdict = ("well" if killed else "partly", state)
        elif result.rc not in case.expect or runs != [("failed",)] or locks:
            result.verdict = ("partly", f"{sig.name}: {state} (next run recovers)")
        else:
            result.verdict = ("well", state)
        return result

    return drive


def drive_concurrent(case: Case, folder: Path, env: dict[str, str]) -> Result:
    """A second run of the same date and campaign while the first works: refused with 3."""
    first = start(fill(case.argv, folder), folder, env)
    wait_for(folder, "stage 2/", 240)
    second = run(fill(case.argv, folder), folder, env, 120, tag="-second")
    result = finish(first, folder, 400)
    if second.rc == 3 and result.rc == 0:
        result.verdict = ("well", "the second run was refused with exit 3; the first succeeded")
    elif second.rc == 3:
        result.verdict = ("partly", f"refused with 3, but the first run ended {result.rc}")
    else:
        result.verdict = ("badly", f"the second run ended {second.rc}: {flat(second.err)[-120:]}")
    return result


def drive_locked(case: Case, folder: Path, env: dict[str, str]) -> Result:
    """The database stays locked by another writer past the job's busy timeout."""
    proc = start(fill(case.argv, folder), folder, env)
    wait_for(folder, "stage 2/", 240)
    holder = sqlite3.connect(folder / "growth.db", timeout=60, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        result = finish(proc, folder, 120)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    # the fault's run comes after the good run of DATE; it is failed at the latest by the
    # rerun (while the lock is held nothing can record it)
    runs = db_rows(folder, "select status from runs order by id")[1:2]
    again = rerun(case, folder, env)
    after = db_rows(folder, "select status from runs order by id")[1:2]
    state = f"exit {result.rc}, run {runs}, rerun exit {again.rc}, then the run is {after}"
    if result.timed_out or again.rc != 0 or ("succeeded",) in runs:
        result.verdict = ("badly", state)
    elif result.rc != 1 or "Traceback" in result.err or after != [("failed",)]:
        result.verdict = ("partly", f"{state}: {flat(result.err)[-100:]}")
    elif "locked" not in result.err:
        result.verdict = ("partly", f"{state}: the message does not say the database is locked")
    else:
        result.verdict = ("well", state)
    return result


def stale_lease(pid: int) -> Callable[[Path], None]:
    """A lease on the fault date held by ``pid`` on this host, heartbeating now."""

    def setup(folder: Path) -> None:
        import socket

        # the store's own format (SQLAlchemy writes microseconds): the take-over deletes the
        # row it judged stale by comparing heartbeat_at, which a shorter text never equals
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        later = (now + dt.timedelta(hours=1)).isoformat(" ", "microseconds")
        now = now.isoformat(" ", "microseconds")
        with sqlite3.connect(folder / "growth.db") as db:
            db.execute(
                "insert into run_locks values ('nightly', '2026-03-01', 'default', 't', ?, ?, "
                "NULL, ?, ?, ?)",
                (socket.gethostname(), pid, now, now, later),
            )

    return setup


def fault_cases() -> Iterator[Case]:
    argv = list(FAULT_ARGV)
    common = dict(good_run=True, timeout_s=600.0)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGKILL):
        yield Case(
            "faults",
            f"{sig.name} while training",
            argv,
            frozenset({1}),
            drive=drive_signal(sig),
            **common,
        )
    yield Case("faults", "two runs at once", argv, frozenset({0}), drive=drive_concurrent, **common)
    yield Case(
        "faults",
        "database locked by another writer",
        argv,
        frozenset({1}),
        drive=drive_locked,
        **common,
    )
    yield Case(
        "faults",
        "lease of a dead process",
        argv,
        frozenset({0}),
        setup=stale_lease(2**22 + 12345),
        **common,
    )
    yield Case(
        "faults",
        "lease of a live process",
        argv,
        frozenset({3}),
        names=("2026-03-01",),
        setup=stale_lease(os.getpid()),
        **common,
    )
    # chmod 444 stops no one running as root (file modes do not bind root), which is how
    # the case once "passed" with exit 0; SQLite's read-only mode refuses every writer
    read_only = [*argv[:-1], "sqlite:///file:{dir}/growth.db?mode=ro&uri=true"]
    yield Case(
        "faults",
        "database file read-only",
        read_only,
        frozenset({1, 2}),
        names=("readonly",),
        early=True,
        setup=lambda f: (f / "growth.db").chmod(0o444),
        **common,
    )
    yield Case(
        "faults",
        "database from a newer version",
        argv,
        frozenset({1, 2}),
        early=True,
        setup=lambda f: db_rows(f, "update alembic_version set version_num = 'ffffffffffff'"),
        names=("ffffffffffff",),
        **common,
    )


# -- PostgreSQL ------------------------------------------------------------------------


def postgres_cases(url: str) -> Iterator[Case]:
    """Writes through ``growth query`` and passwords in URLs, on a real server."""
    from sqlalchemy import create_engine, inspect, text

    engine = create_engine(url)

    def unchanged(before: list) -> Callable[[Path, Result], str | None]:
        def check(folder: Path, result: Result) -> str | None:
            with engine.connect() as con:
                after = con.execute(text("select id, status from runs order by id")).fetchall()
                tables = inspect(con).get_table_names()
            if "hostile_x" in tables:
                return "growth query created a table"
            return None if after == before else f"growth query changed runs: {after}"

        return check

    subprocess.run([sys.executable, "-m", "growth", "runs", "--db", url], capture_output=True)
    with engine.connect() as con:
        before = con.execute(text("select id, status from runs order by id")).fetchall()
    writes = {
        "COMMIT then UPDATE": "SELECT 1; COMMIT; UPDATE runs SET status='failed'",
        "CREATE TABLE": "CREATE TABLE hostile_x (a int)",
        "two statements": "SELECT 1; CREATE TABLE hostile_x (a int)",
    }
    for label, sql in writes.items():
        yield Case(
            "postgres",
            f"query: {label}",
            ["query", sql, "--db", url],
            frozenset({1, 2}),
            check=unchanged(before),
        )
    from sqlalchemy.engine import make_url

    wrong = make_url(url).set(username="nobody", password=SECRET)
    wrong = wrong.render_as_string(hide_password=False)
    for command in (["runs"], ["query", "SELECT 1"]):
        yield Case(
            "postgres",
            f"{command[0]}: wrong password",
            [*command, "--db", wrong],
            frozenset({1, 2}),
            secret=SECRET,
        )


# -- the whole catalogue ---------------------------------------------------------------

FAMILIES = (
    "cells",
    "typed",
    "tables",
    "manifest",
    "options",
    "config",
    "data-nightly",
    "faults",
    "postgres",
)


def catalogue(base: Base, only: set[str]) -> list[Case]:
    makers: dict[str, Callable[[], Iterable[Case]]] = {
        "cells": lambda: cell_cases(base),
        "typed": lambda: typed_cases(base),
        "tables": lambda: table_cases(base),
        "manifest": lambda: manifest_cases(base),
        "options": lambda: option_cases(base.root),
        "config": config_cases,
        "data-nightly": lambda: data_nightly_cases(base),
        "faults": fault_cases,
    }
    pg = os.environ.get("GROWTH_TEST_PG_URL")
    if pg:
        makers["postgres"] = lambda: postgres_cases(pg)
    return [c for family, make in makers.items() if family in only for c in make()]


def report(verdicts: list[Verdict], path: Path) -> None:
    width = max(len(v.case.name) for v in verdicts)
    for v in sorted(verdicts, key=lambda v: (FAMILIES.index(v.case.family), v.case.name)):
        rc = "hang" if v.result.timed_out else v.result.rc
        print(f"{v.case.family:12} {v.case.name:{width}}  exit {rc!s:>4}  {v.grade:7} {v.reason}")
    counts = Counter((v.case.family, v.grade) for v in verdicts)
    print(f"\n{'family':12} {'cases':>6} {'well':>6} {'partly':>7} {'badly':>6} {'skipped':>8}")
    for family in FAMILIES:
        row = [counts[family, g] for g in ("well", "partly", "badly", "skipped")]
        if sum(row):
            print(f"{family:12} {sum(row):6} {row[0]:6} {row[1]:7} {row[2]:6} {row[3]:8}")
    total = Counter(v.grade for v in verdicts)
    print(
        f"{'all':12} {len(verdicts):6} {total['well']:6} {total['partly']:7} {total['badly']:6} "
        f"{total['skipped']:8}"
    )
    with path.open("w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(
            [
                "family",
                "case",
                "argv",
                "expected",
                "exit",
                "grade",
                "reason",
                "seconds",
                "max_rss_mb",
            ]
        )
        for v in verdicts:
            out.writerow(
                [
                    v.case.family,
                    v.case.name,
                    " ".join(v.case.argv),
                    sorted(v.case.expect),
                    "hang" if v.result.timed_out else v.result.rc,
                    v.grade,
                    v.reason,
                    f"{v.result.seconds:.1f}",
                    f"{v.result.max_rss_mb:.0f}",
                ]
            )
    print(f"\nwrote {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2, help="cases run at once")
    parser.add_argument("--only", nargs="+", choices=FAMILIES, default=list(FAMILIES))
    parser.add_argument("--quick", action="store_true", help="every fourth case of each family")
    parser.add_argument("--csv", type=Path, default=Path("hostile_inputs.csv"))
    parser.add_argument("--keep", action="store_true", help="keep the case folders")
    args = parser.parse_args()
    # Started in the background (``cmd &`` without job control, nohup), this process and so
    # every case inherit SIGINT ignored, and Python then never raises KeyboardInterrupt: the
    # SIGINT fault would test the shell, not the job.  A handler here is reset to the
    # default in each child at exec, where Python installs its own.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    root = Path(tempfile.mkdtemp(prefix="hostile-"))
    started = time.perf_counter()
    try:
        print(f"building the base dataset and a good nightly run in {root} ...", flush=True)
        base = build_base(root)
        cases = catalogue(base, set(args.only))
        if args.quick:
            cases = [c for i, c in enumerate(cases) if i % 4 == 0]
        print(f"{len(cases)} cases, {args.jobs} at a time", flush=True)
        (root / "cases").mkdir()

        def one(indexed: tuple[int, Case]) -> Verdict:
            i, case = indexed
            try:
                verdict = judge(case, base, root / "cases" / f"case-{i:04d}")
            except Exception as exc:  # a harness bug must not end the catalogue
                result = Result(None, "", repr(exc), 0.0, 0.0, False)
                verdict = Verdict(case, result, "skipped", f"harness error: {exc!r}"[:200])
            print(
                f"  [{i + 1}/{len(cases)}] {case.family}: {case.name}: {verdict.grade}", flush=True
            )
            return verdict

        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            verdicts = list(pool.map(one, enumerate(cases)))
        report(verdicts, args.csv)
        print(f"{time.perf_counter() - started:,.0f} s in all")
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
