"""Careless input that the hostile-input harness (benchmarks/hostile_inputs.py) still found
handled only partly: each case exits 2 naming what is wrong, before any data is read,
any model trained, the store opened or the lease taken."""

from __future__ import annotations

from pathlib import Path

import pytest

import growth.data.io
import growth.jobs.pipeline
import growth.world
from growth.cli import main
from growth.data.io import write_dataset
from growth.exit_codes import ExitCode
from growth.store import Store
from growth.world import WorldConfig, generate_world

REPO = Path(__file__).resolve().parents[1]
SMALL = str(REPO / "data" / "scenarios" / "small.toml")


@pytest.fixture(scope="module")
def dataset_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    world = generate_world(WorldConfig(n_users=200, seed=5))
    return write_dataset(world.dataset, tmp_path_factory.mktemp("ds") / "world", format="csv")


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in err, err
    return code, out, err


def _no_training(monkeypatch: pytest.MonkeyPatch) -> None:
    def train(*args: object, **kwargs: object) -> None:
        raise AssertionError("models were trained on a dataset that cannot be planned")

    monkeypatch.setattr(growth.jobs.pipeline, "train_models", train)


@pytest.mark.parametrize(
    ("table", "edit", "named"),
    [
        ("candidates", lambda lines: lines[:1], "candidates.csv"),
        ("exposures", lambda lines: lines[:1], "exposures.csv"),
        ("users", lambda lines: [lines[0], lines[0], *lines[1:]], "users.csv"),
    ],
)
def test_unplannable_dataset_is_refused_before_the_store_and_the_lease(
    tmp_path: Path,
    dataset_csv: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    table: str,
    edit,
    named: str,
) -> None:
    """A dataset that can never be planned (a header-only table, a duplicated header) is
    bad input: exit 2 naming the file, before the job's first stage, with no database
    written (no run recorded 'failed', no lease held, no model trained)."""
    _no_training(monkeypatch)
    ds = tmp_path / "ds"
    write_dataset(growth.data.io.read_dataset(dataset_csv), ds, format="csv")
    path = ds / f"{table}.csv"
    path.write_text("\n".join(edit(path.read_text().splitlines())) + "\n")
    db = tmp_path / "g.db"
    code, out, err = _run(
        capsys,
        "nightly",
        "--data-dir",
        str(ds),
        "--db",
        f"sqlite:///{db}",
        "--log-dir",
        str(tmp_path / "logs"),
    )
    assert code == ExitCode.BAD_INPUT and named in err, err
    assert "stage 1/" not in out
    assert not db.exists()


@pytest.mark.parametrize(
    ("option", "section", "field"),
    [
        (["--budget", "1e308"], "", "budget"),
        ([], "[coupons]\nmerchant_budget = 1e300", "merchant_budget"),
        ([], "[coupons]\ntype_budgets = { red_packet = 1e300 }", "type_budgets"),
        ([], "[install]\nbudget = 1e300", "budget"),
        ([], "[push]\ncapacity_share = 2.0", "capacity_share"),
    ],
)
def test_settings_beyond_what_the_plans_can_carry_are_refused_early(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    option: list[str],
    section: str,
    field: str,
) -> None:
    """A budget the solvers cannot carry (1e308 is finite, yet no plan can spend it: the LP
    solvers read it as no limit) and a sending capacity above the whole audience per hour
    are refused, exit 2 naming the field, before any data is read or the store opened."""

    def no_data(*args: object, **kwargs: object) -> None:
        raise AssertionError("data was read before the settings were checked")

    monkeypatch.setattr(growth.jobs.pipeline, "load_data", no_data)
    config = tmp_path / "nightly.toml"
    config.write_text(f'scenario = "{SMALL}"\n{section}\n')
    db = tmp_path / "g.db"
    code, _, err = _run(
        capsys, "nightly", "--config", str(config), *option, "--db", f"sqlite:///{db}"
    )
    assert code == ExitCode.BAD_INPUT and field in err, err
    assert not db.exists()


def test_generate_refuses_a_user_count_no_memory_holds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``generate --users 10**12`` ended in a MemoryError traceback (exit 1); now exit 2
    naming n_users, before any array is allocated."""

    def no_world(*args: object, **kwargs: object) -> None:
        raise AssertionError("the world was generated before the options were checked")

    monkeypatch.setattr(growth.world, "generate_world", no_world)
    code, _, err = _run(capsys, "generate", str(tmp_path / "w"), "--users", str(10**12))
    assert code == ExitCode.BAD_INPUT and "n_users" in err
    assert not (tmp_path / "w").exists()


def test_generate_names_the_scenario_file_that_is_not_a_scenario(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A nightly config given as ``--scenario``: the message names that file, not only the
    keys pydantic found unknown."""
    wrong = tmp_path / "nightly.toml"
    wrong.write_text("[install]\nbudget = 20000.0\n")
    code, _, err = _run(capsys, "generate", str(tmp_path / "w"), "--scenario", str(wrong))
    assert code == ExitCode.BAD_INPUT and "nightly.toml" in " ".join(err.split())


def test_log_dir_that_is_a_file_is_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--log-dir`` naming a file (or a path under one) exits 2 naming the option, before
    the store is opened (it was exit 1, 'File exists', after the lease was taken)."""
    a_file = tmp_path / "nightly.toml"
    a_file.write_text("")
    db = tmp_path / "g.db"
    for log_dir in (a_file, a_file / "logs"):
        code, _, err = _run(
            capsys,
            "nightly",
            "--scenario",
            SMALL,
            "--db",
            f"sqlite:///{db}",
            "--log-dir",
            str(log_dir),
        )
        assert code == ExitCode.BAD_INPUT and "--log-dir" in err, err
    assert not db.exists()


def test_read_only_commands_refuse_a_file_that_is_not_a_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``growth query SELECT 1 --db sqlite:///<a TOML file>`` answered 1 (SQLite opens any
    file lazily); now the file is refused, exit 2 naming it, and left as it was."""
    not_db = tmp_path / "nightly.toml"
    not_db.write_text('scenario = "small"\n')
    for argv in (["query", "SELECT 1"], ["runs"]):
        code, _, err = _run(capsys, *argv, "--db", f"sqlite:///{not_db}")
        assert code == ExitCode.BAD_INPUT and "nightly.toml" in " ".join(err.split()), err
    assert not_db.read_text() == 'scenario = "small"\n'


def test_runs_limit_beyond_an_integer_column_is_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``growth runs --limit 10**20`` on a real store failed inside SQLite ('Python int too
    large to convert to SQLite INTEGER', exit 1); now the option is bounded, exit 2."""
    url = f"sqlite:///{tmp_path / 'g.db'}"
    Store(url).close()
    code, _, err = _run(capsys, "runs", "--limit", str(10**20), "--db", url)
    assert code == ExitCode.BAD_INPUT and "--limit" in err, err
