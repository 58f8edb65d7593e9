"""README.md's commands are true as written: every line of its ```bash blocks is checked as printed.

What runs and what is checked in a dry form (the long ones would take the CI budget many times over):
- `crime-pipeline ...`: parsed by the real CLI (its `main`, stopped right after argument parsing);
- `python -m benchmarks...` / `python benchmarks/x.py`: the script exists and declares every flag used;
- `python -m pytest -m EXPR`: every marker in EXPR is registered;
- `pip install`: the requirements file and every extra exist; `jupyter lab FILE`, `cp SRC`: the files exist;
- `dg ...`: a known subcommand, the instance given as an absolute DAGSTER_HOME; `--assets SEL` resolved on
  the project's definitions; and the UI block's `export` + `dg list defs` run as printed, in a subprocess
  (no telemetry notice, nothing written to ~/.dagster).
A line that fits none of these fails: a new command in the README gets a check here.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import subprocess
import tomllib

import dagster as dg
import pytest

from crime_pipeline import cli
from crime_pipeline.definitions import defs
from crime_pipeline_tests.conftest import REPO

README = REPO / "README.md"
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
DG_SUBCOMMANDS = {("dev",), ("check", "defs"), ("list", "defs"), ("launch",)}


def bash_blocks() -> list[list[str]]:
    """Each ```bash block of the README as its command lines."""
    blocks = re.findall(r"^```bash\n(.*?)^```", README.read_text(), flags=re.M | re.S)
    return [[line for line in block.splitlines() if line.strip()] for block in blocks]


def commands(line: str) -> list[list[str]]:
    """The `&&`-separated commands of a line, as the shell splits them (comments dropped)."""
    words, found = shlex.split(line, comments=True), [[]]
    for word in words:
        found.append([]) if word == "&&" else found[-1].append(word)
    return [c for c in found if c]


class Parsed(Exception):
    pass


def cli_parses(args: list[str], monkeypatch) -> str | None:
    original = argparse.ArgumentParser.parse_args

    def parse_then_stop(self, argv=None, namespace=None):
        original(self, argv, namespace)
        raise Parsed

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", parse_then_stop)
    try:
        cli.main(args)
    except Parsed:
        return None
    except SystemExit as exc:
        return f"crime-pipeline {' '.join(args)} does not parse (exit {exc.code})"
    finally:
        monkeypatch.setattr(argparse.ArgumentParser, "parse_args", original)
    return f"crime-pipeline {' '.join(args)} ran without parsing arguments"


def script_declares(path, args: list[str]) -> str | None:
    if not path.exists():
        return f"{path.relative_to(REPO)} does not exist"
    if placeholders := [a for a in args if a.startswith("[") or a.endswith("]")]:
        return f"{placeholders} are placeholders in brackets, not arguments: the command fails as printed"
    source = path.read_text()
    missing = [a for a in args if a.startswith("--") and f'"{a}"' not in source]
    return f"{path.relative_to(REPO)} declares no {missing}" if missing else None


def selection_problem(selection: str) -> str | None:
    """`dg launch --assets SEL` without --partition: SEL must hold assets and no partitioned one."""
    graph = defs.resolve_asset_graph()
    try:  # as `dg launch` reads it (`dagster asset materialize --select`)
        keys = dg.AssetSelection.from_coercible(selection.split(",")).resolve(graph)
    except Exception as exc:
        return f"--assets {selection!r} is not a selection dg launch accepts: {exc}"
    partitioned = sorted(k.to_user_string() for k in keys if graph.get(k).partitions_def)
    if not keys or partitioned:
        return f"--assets {selection!r} selects {len(keys)} assets, partitioned ones among them: {partitioned}"
    return None


def problem(command: list[str], env: dict[str, str], monkeypatch) -> str | None:
    """Why a README command would not run as printed, or None."""
    while command and re.fullmatch(r"[A-Z_]+=.*", command[0]):
        name, value = command.pop(0).split("=", 1)
        env[name] = value
    if env.get("DAGSTER_HOME") and not env["DAGSTER_HOME"].startswith(("/", "$PWD/")):
        return f"DAGSTER_HOME={env['DAGSTER_HOME']} is not an absolute path (Dagster refuses it)"
    program, args = command[0], command[1:]
    if program == "export":
        for assignment in args:
            env.update([assignment.split("=", 1)])
        return problem(["true"], env, monkeypatch)
    if program == "true" or command == ["python3", "-m", "venv", ".venv"] or program == "mkdir":
        return None
    if program == "cp":  # every source must exist, as the shell would glob it from the project folder
        missing = [a for a in args[:-1] if not a.startswith("-") and not list(REPO.glob(a))]
        return f"cp: no file matches {missing} from the project folder" if missing else None
    if program == ".venv/bin/pip" and args[0] == "install":
        extras = PYPROJECT["project"]["optional-dependencies"]
        for flag, value in zip(args, args[1:] + [""], strict=True):
            if flag == "-r" and not (REPO / value).exists():
                return f"pip install -r {value}: no such file"
            if flag == "-e" and (m := re.fullmatch(r"\.(?:\[(\w+)\])?", value)) and m[1] and m[1] not in extras:
                return f"pip install -e {value}: no extra {m[1]!r} in pyproject.toml"
        return None
    if program == ".venv/bin/crime-pipeline":
        return cli_parses(args, monkeypatch)
    if program == ".venv/bin/python" and args[:2] == ["-m", "pytest"]:
        registered = {m.split(":")[0] for m in PYPROJECT["tool"]["pytest"]["ini_options"]["markers"]}
        expression = args[args.index("-m", 2) + 1] if "-m" in args[2:] else ""
        unknown = set(re.findall(r"\w+", expression)) - {"and", "or", "not"} - registered
        return f"pytest -m {expression!r}: unregistered markers {sorted(unknown)}" if unknown else None
    if program == ".venv/bin/python" and args[0] == "-m" and args[1].split(".")[0] == "benchmarks":
        module = args[1].split(".")
        path = REPO.joinpath(*module).with_suffix(".py") if len(module) > 1 else REPO / "benchmarks" / "__main__.py"
        return script_declares(path, args[2:])
    if program == ".venv/bin/python" and args[0].startswith("benchmarks/"):
        return script_declares(REPO / args[0], args[1:])
    if program == ".venv/bin/jupyter":
        return None if (REPO / args[-1]).exists() else f"jupyter {' '.join(args)}: no such notebook"
    if program == ".venv/bin/dg":
        if not any(tuple(args[: len(s)]) == s for s in DG_SUBCOMMANDS):
            return f"dg {' '.join(args)}: not a subcommand the project documents"
        if "DAGSTER_HOME" not in env:
            return f"dg {' '.join(args)}: no DAGSTER_HOME given (telemetry stays on, the instance is a throwaway)"
        return selection_problem(args[args.index("--assets") + 1]) if "--assets" in args else None
    return f"{' '.join(command)}: no check for this command; add one to {__name__}"


def test_every_readme_command_runs_as_printed_or_passes_its_dry_check(monkeypatch):
    problems, checked = [], 0
    for block in bash_blocks():
        env: dict[str, str] = {}
        for line in block:
            for command in commands(line):
                checked += 1
                found = problem(list(command), env, monkeypatch)
                problems += [f"{line.strip()!r}: {found}"] if found else []
    assert checked > 25 and problems == []


def test_the_documented_launch_rebuilds_everything_below_incidents():
    [launch] = [
        c for block in bash_blocks() for line in block for c in commands(line) if c[:2] == [".venv/bin/dg", "launch"]
    ]
    graph = defs.resolve_asset_graph()
    selected = {k.to_user_string() for k in dg.AssetSelection.from_coercible(launch[-1].split(",")).resolve(graph)}
    below = {k.to_user_string() for k in dg.AssetSelection.assets("incidents").downstream().resolve(graph)}
    forecast = {k.to_user_string() for k in graph.get_all_asset_keys() if graph.get(k).group_name == "forecast"}
    assert selected == below - forecast
    assert {
        "dataset_splits",
        "baseline_model",
        "gbdt_model",
        "mlp_model",
        "mlp_weighted_model",
        "crime_report",
    } <= selected


def test_the_dry_checks_catch_what_a_user_would_hit(monkeypatch):
    cases = {
        "DAGSTER_HOME=.dagster_home .venv/bin/dg launch --assets incidents*": "not an absolute path",
        ".venv/bin/dg list defs": "no DAGSTER_HOME",
        ".venv/bin/crime-pipeline generate --rows many": "does not parse",
        ".venv/bin/python -m benchmarks.stages --rows 1000000 [--files 12]": "placeholders",
        ".venv/bin/python -m benchmarks.stages --rows 1000000 --file 12": "declares no",
        ".venv/bin/python -m pytest -m 'not quick'": "unregistered markers",
    }
    for line, expected in cases.items():
        [command] = commands(line)
        assert expected in (problem(command, {}, monkeypatch) or ""), line
    assert "partitioned" in selection_problem("incidents*")  # the weekly forecast needs a partition
    assert "not a selection" in selection_problem("incidents* and not group:forecast")


@pytest.mark.external
def test_the_readme_dg_commands_run_with_telemetry_off(tmp_path):
    """The UI block's `export DAGSTER_HOME=...` and `dg list defs`, run as printed in a shell from the
    project folder, for a user whose home has no Dagster settings."""
    [block] = [b for b in bash_blocks() if any(".venv/bin/dg list defs" in line for line in b)]
    script = "\n".join(line for line in block if line.startswith("export ") or ".venv/bin/dg list defs" in line)
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"} | {"HOME": str(tmp_path)}
    done = subprocess.run(["bash", "-ec", script], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "incidents" in done.stdout
    assert "telemetry" not in (done.stdout + done.stderr).lower()
    assert not (tmp_path / ".dagster").exists()
