"""The README's own examples work: every block is exercised (issue 12: the example with
`drop` after `[[sensors]]` put `drop` inside the sensor).

- scenario TOML blocks validate;
- the set-up block's `make` targets exist, and `make run`'s command runs (twice: it owns
  its folder);
- every `metricpower` command of the shell blocks runs, in order, in one fresh folder: the
  tour, then the ensembles; `serve` is checked up to the server (its arguments and folder
  are validated, the server itself is not started); `pip install` names an extra that
  `pyproject.toml` declares;
- the Python blocks run.

Runs are made small (300 citizens, 5 days, 2 seeds) by rewriting the sizes in the
commands and snippets: what is tested is that the examples are right, not how long they
take. The extension example (a `fine` effect, its Python module and its
`[[consequences]]` fragment) is run by
`tests/test_engine.py::test_a_new_effect_is_one_registered_class`.
"""

from __future__ import annotations

import os
import re
import runpy
import shlex
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from metricpower.cli import app

ROOT = Path(__file__).parents[1]
README = (ROOT / "README.md").read_text()
BLOCKS = re.findall(r"```(\w+)\n(.*?)```", README, re.S)
SMALL = ["--citizens", "300", "--days", "5"]
#: Options whose values are sizes: shrunk wherever a command gives them.
SIZES = {"--citizens": "300", "--days": "5", "--seeds": "2"}
runner = CliRunner()


def blocks(language: str, holding: str = "") -> list[str]:
    return [body for lang, body in BLOCKS if lang == language and holding in body]


#: Whole scenario files (the others are fragments of the extension example).
SCENARIOS = blocks("toml", "preset = ")
#: Dated changes: a fragment of the court_blacklist preset's kind of scenario.
CHANGES = blocks("toml", "[[changes]]")
#: The Python blocks that run as they are (the other is the extension example's module).
SNIPPETS = blocks("python", "import metricpower as mp")


def test_every_block_is_exercised():
    """Each block of the README is one of the kinds the tests below run; a new kind of
    block fails here until it is tested."""
    extension = blocks("python", "@register") + blocks("toml", "[[consequences]]")
    make = blocks("sh", "make run")
    commands = [b for b in blocks("sh") if "bin/metricpower" in b]
    assert len(SCENARIOS) >= 1 and len(SNIPPETS) == 2 and len(extension) == 2
    assert len(make) == 1 and len(commands) == 5 and len(CHANGES) == 1
    assert len(BLOCKS) == len(SCENARIOS) + len(SNIPPETS) + len(extension) + len(make) + \
        len(commands) + len(CHANGES)


def test_the_dated_change_example_validates(tmp_path):
    """The `[[changes]]` fragment is valid in the preset it is taken from."""
    path = tmp_path / "changes.toml"
    path.write_text('preset = "court_blacklist"\ndrop = { changes = "*" }\n\n' + CHANGES[0])
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("index", range(len(SCENARIOS)))
def test_toml_examples_validate(tmp_path, index):
    path = tmp_path / "example.toml"
    path.write_text(SCENARIOS[index])
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 0, result.output


def test_make_targets(tmp_path):
    """`make run` runs the essay into the folder it owns, replacing its own earlier run;
    `make test` runs pytest."""
    (body,) = blocks("sh", "make run")
    targets = [line.split("#", 1)[0].split()[1] for line in body.splitlines() if line]
    assert targets == ["run", "test"]
    out = tmp_path / "runs" / "essay"
    # Not the settings of a `make test` this may run under (MAKEFLAGS carries its ARGS).
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    printed = {t: subprocess.run(["make", "-n", "-C", str(ROOT), t, f"OUT={out}", "ARGS="],
                                 capture_output=True, text=True, check=True, env=env).stdout
               for t in targets}
    assert "-m pytest" in printed["test"]
    (command,) = [line for line in printed["run"].splitlines() if "bin/metricpower run" in line]
    words = shlex.split(command)[1:]
    assert words == ["run", "--out", str(out), "--force"]
    for _ in range(2):
        result = runner.invoke(app, [*words, *SMALL, "--no-report"])
        assert result.exit_code == 0, result.output
    assert (out / "manifest.json").is_file()
    assert [p.name for p in out.parent.iterdir()] == ["essay"]


def _serve_checked(monkeypatch) -> list:
    """Stand in for the server: record what `serve` would start it with."""
    import metricpower.web.app

    started = []
    monkeypatch.setattr(metricpower.web.app, "serve",
                        lambda folder, host, port: started.append((folder, host, port)))
    return started


def test_the_shell_commands_run(tmp_path, monkeypatch):
    """Every `metricpower` command of the shell blocks, in order, in a fresh folder (the
    tour, the browser, then many seeds), at small sizes."""
    monkeypatch.chdir(tmp_path)
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    started = _serve_checked(monkeypatch)
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]
    commands = [line.split("#", 1)[0].strip() for body in blocks("sh")
                for line in body.splitlines() if "bin/" in line]
    assert sum("bin/metricpower" in c for c in commands) >= 12
    for command in commands:
        words = shlex.split(command)
        if words[0].endswith("/pip"):
            (extra,) = re.findall(r"\.\[(\w+)\]", command)
            assert words[1:3] == ["install", "-e"] and extra in extras
            continue
        words = words[1:]
        target = None
        if ">" in words:
            words, target = words[:words.index(">")], words[words.index(">") + 1]
        for i, word in enumerate(words[:-1]):
            if word in SIZES:
                words[i + 1] = SIZES[word]
        if words[0] in ("run", "compare", "ensemble", "sweep"):
            words += [s for s in SMALL if s not in words]
            if words[0] == "sweep" and "--seeds" not in words:
                words += ["--seeds", "2"]  # else the grid file's 4
            if "--seeds" in words:
                words += ["--workers", "1"]
        if words[0] == "calibrate":
            # A calibration takes minutes and `--save` rewrites the shipped preset: its
            # options are checked against the command's own.
            shown = runner.invoke(app, ["calibrate", "--help"]).output
            assert all(w in shown for w in words if w.startswith("--")), command
            continue
        result = runner.invoke(app, words)
        if words[0] == "resume":  # nothing was interrupted here: a clean refusal
            assert result.exit_code == 2 and "no interrupted run" in result.output, \
                result.output
            continue
        assert result.exit_code == 0, (command, result.output)
        if target:
            Path(target).write_text(result.stdout)
    assert (tmp_path / "runs" / "mine" / "report.html").is_file()
    assert started == [(Path("runs"), "127.0.0.1", 8000)] * 2
    for folder in ("essay-ensemble", "essay-vs-null-seeds"):
        assert (tmp_path / "runs" / folder / "results.parquet").is_file(), folder
    assert len(list((tmp_path / "runs").glob("essay-sweep*/results.parquet"))) == 1


def _small(snippet: str) -> str:
    small = (snippet.replace('"citizens": 20000', '"citizens": 300')
             .replace('"days": 180', '"days": 5')
             .replace("citizens=20000,", "citizens=300, days=5,")
             .replace("seeds=10", "seeds=2").replace("seeds=4", "seeds=2"))
    assert small != snippet
    return small


def _run_snippet(folder: Path, snippet: str) -> dict:
    """Run the README's snippet (shrunk) as a script; its globals."""
    path = folder / "snippet.py"
    path.write_text(_small(snippet))
    return runpy.run_path(str(path), run_name="__main__")


def test_the_first_python_snippet_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (snippet,) = [s for s in SNIPPETS if "run.write" in s]
    namespace = _run_snippet(tmp_path, snippet)
    again = namespace["again"]
    assert again.citizens.num_rows == 300
    assert (tmp_path / "runs" / "notebook" / "manifest.json").is_file()


def test_the_ensembles_python_snippet_runs(tmp_path, monkeypatch):
    import metricpower.ensembles.executors as executors

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(executors, "cores", lambda: 1)  # members in this process: no pool
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    (snippet,) = [s for s in SNIPPETS if "mp.ensemble" in s]
    namespace = _run_snippet(tmp_path, snippet)
    runs = namespace["runs"]
    assert [r.scenario.name for r in runs] == ["essay", "null"]
    assert runs[0].tables["citizens"]["conduct"].equals(runs[1].tables["citizens"]["conduct"])
    assert namespace["res"].effects().height > 0
    for folder in ("essay-ensemble", "essay-sweep", "j", "essay-vs-null-seeds"):
        assert (tmp_path / "runs" / folder / "results.parquet").is_file(), folder
