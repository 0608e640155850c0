"""The `scaling` command as a user types it: options on either side of the subcommand, help, version,
errors that list what exists, `studies`, `sql` formats and widths, `report`, and `ui` serving."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from importlib.metadata import version

import click
import pytest

from helpers import results_csv
from scaling.simulate.results_table import write_results_study



def scaling(env, *args, timeout=600):
    return subprocess.run([sys.executable, "-m", "pipelines.cli", *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    """A studies folder with two small studies, one of them run through `scaling run`."""
    tmp = tmp_path_factory.mktemp("cli")
    studies = tmp / "studies"
    for name in ("toy", "other"):
        write_results_study(studies, name, location=f"data/{name}/*.csv")
    env = {k: v for k, v in os.environ.items() if k not in ("SCALING_WAREHOUSE", "SCALING_STUDIES", "DAGSTER_HOME")}
    env["COLUMNS"] = "80"
    before = scaling(env, "--studies", str(studies), "studies")
    # options after the subcommand (the form the issue says used to be rejected)
    run = scaling(env, "run", "--warehouse", str(tmp / "wh"), "--studies", str(studies), "--study", "toy")
    return tmp, studies, env, before, run


def test_run_takes_options_after_the_subcommand_and_says_where_the_report_is(toy):
    tmp, _, _, _, run = toy
    assert run.returncode == 0, run.stdout + run.stderr
    index = tmp / "wh" / "reports" / "index.html"
    assert f"reports: {index}" in run.stdout
    assert index.exists() and (tmp / "wh" / "reports" / "toy.html").exists()
    assert (tmp / "wh" / "reports" / "toy.md").exists()
    assert not (tmp / "wh" / "reports" / "other.html").exists()  # only the studies that ran


def test_options_before_the_subcommand_reach_it(toy):
    tmp, studies, env, _, _ = toy
    out = scaling(env, "--warehouse", str(tmp / "wh"), "--studies", str(studies), "sql",
                  "SELECT count(*) AS n FROM runs", "--format", "csv")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["n", "12"]


def test_bare_command_lists_the_commands_and_version_is_the_package_version():
    env = dict(os.environ)
    out = scaling(env)
    assert out.returncode == 0, out.stderr
    for name in ("run", "report", "sql", "studies", "ui"):
        assert f"\n  {name} " in out.stdout, out.stdout
    v = scaling(env, "--version")
    assert v.returncode == 0 and v.stdout.strip() == f"scaling, version {version('scaling-studies')}"


def test_every_option_and_argument_has_help():
    from pipelines.cli import cli

    commands = {"": cli, **cli.commands}
    for name, command in commands.items():
        ctx = click.Context(command, info_name=f"scaling {name}".strip())
        text = command.get_help(ctx)
        for param in command.params:
            if isinstance(param, click.Option) and not param.hidden:
                assert param.help, f"scaling {name} {param.opts}: no help"
            elif isinstance(param, click.Argument):
                assert f"{param.name.upper()}:" in text, f"scaling {name}: argument {param.name} is not explained"


def test_a_wrong_study_name_lists_the_available_ones(toy):
    tmp, studies, env, _, _ = toy
    for args in (["run", "--study", "toyy"], ["report", "toyy"]):
        out = scaling(env, "--warehouse", str(tmp / "wh"), "--studies", str(studies), *args)
        assert out.returncode == 2
        assert "no study named 'toyy'" in out.stderr and "available: other, toy" in out.stderr, out.stderr


def test_studies_shows_description_sources_and_last_materialization(toy):
    tmp, studies, env, before, _ = toy
    assert before.returncode == 0, before.stderr
    assert before.stdout.count("last materialized: never") == 2
    (studies / "data" / "other" / "results.csv").unlink()
    try:
        after = scaling(env, "studies", "--warehouse", str(tmp / "wh"), "--studies", str(studies))
    finally:
        results_csv(studies / "data" / "other" / "results.csv")
    assert after.returncode == 0, after.stderr
    blocks = _blocks(after.stdout)
    assert "toy: a small results table" in blocks["toy"]
    assert "source table (checkpoint_results): data 'data/toy/*.csv': 1 files" in blocks["toy"]
    assert "last materialized: 20" in blocks["toy"] and "UTC" in blocks["toy"]
    assert "'data/other/*.csv': NO files match" in blocks["other"]
    assert "last materialized: never" in blocks["other"]


def _blocks(text: str) -> dict[str, str]:
    out, name = {}, None
    for line in text.splitlines():
        if not line.startswith(" "):
            name = line.split()[0]
            out[name] = ""
        out[name] += line + "\n"
    return out


def test_studies_exits_2_naming_an_invalid_file(toy):
    tmp, studies, env, _, _ = toy
    bad = tmp / "bad_studies"
    bad.mkdir()
    (bad / "broken.toml").write_text("[study]\nflops_convention = 'nope'\n")
    out = scaling(env, "studies", "--studies", str(bad), "--warehouse", str(tmp / "wh"))
    assert out.returncode == 2 and "broken" in out.stderr, out.stderr


def test_sql_formats(toy):
    tmp, _, env, _, _ = toy
    sql = "SELECT run, params, tokens FROM runs ORDER BY params, tokens LIMIT 3"
    base = ["sql", sql, "--warehouse", str(tmp / "wh")]
    rows = list(csv.DictReader(io.StringIO(scaling(env, *base, "--format", "csv").stdout)))
    assert [r["run"] for r in rows] == ["m10000000-5", "m10000000-20", "m10000000-80"]
    assert float(rows[0]["params"]) == 1e7
    assert scaling(env, *base, "--csv").stdout == scaling(env, *base, "--format", "csv").stdout
    records = json.loads(scaling(env, *base, "--format", "json").stdout)
    assert records[1] == {"run": "m10000000-20", "params": 1e7, "tokens": 2e8}
    md = scaling(env, *base, "--format", "markdown").stdout.splitlines()
    assert md[:3] == ["| run | params | tokens |", "|---|---|---|", "| m10000000-5 | 1e+07 | 5e+07 |"]
    bad = scaling(env, "sql", "SELECT nope FROM runs", "--warehouse", str(tmp / "wh"))
    assert bad.returncode == 1 and "nope" in bad.stderr


def test_sql_table_width_follows_the_terminal(toy):
    tmp, _, env, _, _ = toy
    sql = "SELECT * FROM law_fits"
    narrow = scaling({**env, "COLUMNS": "80"}, "sql", sql, "--warehouse", str(tmp / "wh")).stdout.splitlines()
    wide = scaling({**env, "COLUMNS": "200"}, "sql", sql, "--warehouse", str(tmp / "wh")).stdout.splitlines()
    assert max(map(len, narrow)) <= 80
    assert 80 < max(map(len, wide)) <= 200


def _in_a_terminal(env, args, columns: int, rows: int = 40) -> tuple[int, str]:
    """Run `scaling ARGS` with its stdin, stdout and stderr on a pseudo-terminal of the given size."""
    import fcntl
    import pty
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    proc = subprocess.Popen([sys.executable, "-m", "pipelines.cli", *args], env=env, stdin=slave, stdout=slave,
                            stderr=slave, start_new_session=True)
    os.close(slave)
    chunks = []
    try:
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # the terminal's other end closed: the command has exited
                break
            if not data:
                break
            chunks.append(data)
        status = proc.wait(timeout=120)
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return status, b"".join(chunks).decode(errors="replace").replace("\r\n", "\n")


def test_sql_table_fits_an_interactive_terminal(toy):
    tmp, _, env, _, _ = toy
    env = {k: v for k, v in env.items() if k not in ("COLUMNS", "LINES")}  # the width comes from the terminal
    status, out = _in_a_terminal(env, ["sql", "SELECT * FROM law_fits", "--warehouse", str(tmp / "wh")],
                                 columns=120)
    assert status == 0 and "Traceback" not in out, out
    lines = out.splitlines()
    assert any("chinchilla" in line for line in lines), out
    assert 80 < max(map(len, lines)) <= 120, out


def test_report_rewrites_the_named_study_and_refuses_without_a_catalog(toy):
    tmp, studies, env, _, _ = toy
    out = scaling(env, "report", "toy", "--warehouse", str(tmp / "wh"), "--studies", str(studies),
                  "--out", str(tmp / "elsewhere"))
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [str(tmp / "elsewhere" / "toy.html"), str(tmp / "elsewhere" / "index.html")]
    page = (tmp / "elsewhere" / "toy.html").read_text()
    assert "toy: a small results table" in page and "chinchilla" in page and "data:image/png;base64," in page
    empty = scaling(env, "report", "--warehouse", str(tmp / "nothing"), "--studies", str(studies))
    assert empty.returncode == 1 and "run `scaling run` first" in empty.stderr


def test_report_without_a_study_writes_every_study_of_the_warehouse_that_has_a_study_file(toy):
    tmp, studies, env, _, _ = toy
    out = scaling(env, "report", "--warehouse", str(tmp / "wh"), "--studies", str(studies),
                  "--out", str(tmp / "all"))
    assert out.returncode == 0, out.stderr
    # `other` has a study file but was never run; `toy` was
    assert out.stdout.split() == [str(tmp / "all" / "toy.html"), str(tmp / "all" / "index.html")]
    assert not (tmp / "all" / "other.html").exists()
    # a warehouse whose studies have no study file in the studies folder: nothing to report, and why
    only_other = tmp / "only_other"
    only_other.mkdir()
    (only_other / "other.toml").write_text((studies / "other.toml").read_text())
    none = scaling(env, "report", "--warehouse", str(tmp / "wh"), "--studies", str(only_other),
                   "--out", str(tmp / "none"))
    assert none.returncode == 1 and "no study in the warehouse has a study file" in none.stderr, none.stderr
    assert "toy" in none.stderr

def _without_python_on_path(env: dict) -> dict:
    """`env` with no folder on PATH that holds a Python or its scripts (a virtualenv not activated)."""
    keep = [d for d in env.get("PATH", "").split(os.pathsep)
            if d and not (os.path.exists(os.path.join(d, "python")) or os.path.exists(os.path.join(d, "dg")))]
    return {**env, "PATH": os.pathsep.join(keep or ["/usr/bin", "/bin"])}


def test_ui_says_how_to_get_dg_when_it_is_missing(toy, tmp_path):
    """A Python without `dg` beside it or on PATH: a clear error, not a traceback."""
    tmp, studies, env, _, _ = toy
    venv = tmp_path / "venv"  # sees the installed packages, but has no `dg` script of its own
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)], check=True)
    out = subprocess.run([str(venv / "bin" / "python"), "-m", "pipelines.cli", "ui", "--warehouse", str(tmp / "wh"),
                          "--studies", str(studies)], env=_without_python_on_path(env), capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr
    assert f"no `dg` next to {venv / 'bin' / 'python'} or on PATH" in out.stderr, out.stderr
    assert "pip install dagster-dg-cli" in out.stderr

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_ui_serves_the_definitions_on_the_given_host_and_port(toy):
    """Also from an interpreter whose scripts folder is not on PATH (a virtualenv not activated):
    `dg` is found beside it."""
    tmp, studies, env, _, _ = toy
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "pipelines.cli", "ui", "--host", "127.0.0.1", "--port", str(port),
                             "--warehouse", str(tmp / "wh"), "--studies", str(studies)],
                            env=_without_python_on_path(env),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline, body = time.monotonic() + 120, None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                request = urllib.request.Request(
                    f"http://127.0.0.1:{port}/graphql", headers={"Content-Type": "application/json"},
                    data=json.dumps({"query": "{ assetNodes { assetKey { path } } }"}).encode())
                with urllib.request.urlopen(request, timeout=5) as response:
                    body = json.loads(response.read())
                    if body.get("data", {}).get("assetNodes"):
                        break
            except OSError:
                pass
            time.sleep(1)
        assert proc.poll() is None, "scaling ui exited"
        keys = {"/".join(n["assetKey"]["path"]) for n in body["data"]["assetNodes"]}
        assert {"raw_sources", "law_fits", "forecasts"} <= keys
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
