"""The README's own examples work: its TOML blocks validate, its tour's shell commands run,
and its Python snippet runs (issue 12: the example with `drop` after `[[sensors]]` put
`drop` inside the sensor).

Runs are made small (300 citizens, 5 days) by adding `--citizens` and `--days` to the
commands that simulate and by shrinking the snippet's sizes: what is tested is that the
examples are right, not how long they take. The extension example (a `fine` effect, its
Python module and its `[[consequences]]` fragment) is run by
`tests/test_engine.py::test_a_new_effect_is_one_registered_class`.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from metricpower.cli import app

README = (Path(__file__).parents[1] / "README.md").read_text()
BLOCKS = re.findall(r"```(\w+)\n(.*?)```", README, re.S)
SMALL = ["--citizens", "300", "--days", "5"]
runner = CliRunner()


def blocks(language: str, holding: str = "") -> list[str]:
    return [body for lang, body in BLOCKS if lang == language and holding in body]


#: Whole scenario files (the others are fragments of the extension example).
SCENARIOS = blocks("toml", "preset = ")


def test_the_readme_has_its_examples():
    assert len(SCENARIOS) >= 1 and len(blocks("python", "mp.simulate")) == 1
    assert len(blocks("sh")) >= 2


@pytest.mark.parametrize("index", range(len(SCENARIOS)))
def test_toml_examples_validate(tmp_path, index):
    path = tmp_path / "example.toml"
    path.write_text(SCENARIOS[index])
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 0, result.output


def test_the_tour_runs(tmp_path, monkeypatch):
    """Every `metricpower` command of the tour, in order, in a fresh folder."""
    monkeypatch.chdir(tmp_path)
    commands = [line.split("#", 1)[0].strip() for body in blocks("sh")
                for line in body.splitlines() if "bin/metricpower" in line]
    assert len(commands) >= 8
    for command in commands:
        words = shlex.split(command)[1:]
        target = None
        if ">" in words:
            words, target = words[:words.index(">")], words[words.index(">") + 1]
        if words[0] in ("run", "compare"):
            words += SMALL
        result = runner.invoke(app, words)
        assert result.exit_code == 0, (command, result.output)
        if target:
            Path(target).write_text(result.stdout)
    assert (tmp_path / "runs" / "mine" / "report.html").is_file()


def test_the_python_snippet_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (snippet,) = blocks("python", "mp.simulate")
    small = snippet.replace('"citizens": 20000', '"citizens": 300').replace('"days": 180',
                                                                          '"days": 5')
    assert small != snippet
    namespace: dict = {}
    exec(compile(small, "README.md", "exec"), namespace)  # the README's own text
    again = namespace["again"]
    assert again.citizens.num_rows == 300
    assert (tmp_path / "runs" / "notebook" / "manifest.json").is_file()
