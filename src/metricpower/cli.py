"""The command line: `metricpower run | validate | presets | explain | …`."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from metricpower.memory import MemoryTooSmall, check_memory
from metricpower.runs import TABLES, Run, load_run, simulate
from metricpower.scenario import (
    Scenario,
    ScenarioError,
    load_preset,
    load_scenario,
    preset_names,
    preset_summary,
    preset_text,
)
from metricpower.store import OutputError, check_target, fresh, write_file

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="A social credit system, executable, on a synthetic population.")
presets_app = typer.Typer(help="List the shipped presets, or show one as TOML.",
                          invoke_without_command=True)
app.add_typer(presets_app, name="presets")
out = Console()
err = Console(stderr=True)


def fail(message: str) -> None:
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)


def resolve_scenario(scenario: Path | None, preset: str | None, citizens: int | None,
                     days: int | None, seed: int | None) -> Scenario:
    run = {k: v for k, v in (("citizens", citizens), ("days", days), ("seed", seed))
           if v is not None}
    overrides = {"run": run} if run else None
    if scenario is not None and preset is not None:
        fail("give a scenario file or --preset, not both")
    if scenario is not None:
        return load_scenario(scenario, overrides)
    return load_preset(preset or "essay", overrides)


def run_with_progress(scenario: Scenario) -> Run:
    n, days = scenario.run.citizens, scenario.run.days
    start = time.perf_counter()
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("days"), TimeElapsedColumn(), TextColumn("{task.fields[speed]}"))
    with Progress(*columns, console=err, transient=False) as progress:
        task = progress.add_task(f"{escape(scenario.name)}: {n:,} citizens", total=days,
                                 speed="")

        def tick(day: int) -> None:
            rate = n * (day + 1) / max(time.perf_counter() - start, 1e-9)
            progress.update(task, completed=day + 1, speed=f"{rate:,.0f} citizen-days/s")

        return simulate(scenario, progress=tick)


def summary_table(run: Run) -> Table:
    """The headline numbers; every name from the scenario is escaped (Rich markup)."""
    m = run.metrics
    table = Table(title=f"{escape(str(m['scenario']))}: {m['citizens']:,} citizens, "
                        f"{m['days']} days, seed {m['seed']}")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_row("mean score (start → end)", f"{m['initial_score']} → {m['mean_score']:.1f}")
    for tier, share in m["tier_shares"].items():
        table.add_row(f"tier {escape(tier)}", f"{share:.1%}")
    for name, size in m["list_sizes"].items():
        table.add_row(f"on {escape(name)}", f"{size:,}")
    p = m["penalties"]
    table.add_row("penalties", f"{p['total']:,}")
    table.add_row("  with a benign hidden context", f"{p['benign_context']:,} "
                                                   f"({p['benign_context_share']:.1%})")
    table.add_row("  misattributed (false matches)", f"{p['misattributed']:,} "
                                                    f"({p['misattributed_per_100k']:.1f} / 100k)")
    table.add_row("sanctions applied", f"{m['sanctions_total']:,}")
    table.add_row("rewards granted", f"{m['rewards_total']:,}")
    return table


@app.command()
def run(
    scenario: Annotated[Path | None, typer.Argument(help="scenario TOML file")] = None,
    preset: Annotated[str | None, typer.Option(help="run a shipped preset")] = None,
    citizens: Annotated[int | None, typer.Option(help="population size")] = None,
    days: Annotated[int | None, typer.Option(help="days to simulate")] = None,
    seed: Annotated[int | None, typer.Option(help="random seed")] = None,
    out_dir: Annotated[Path | None, typer.Option(
        "--out", help="run directory (default: a fresh folder runs/NAME, runs/NAME-2, …)")]
        = None,
    force: Annotated[bool, typer.Option(
        help="replace the earlier run in --out (never anything but a run)")] = False,
    report: Annotated[bool, typer.Option(help="write report.html")] = True,
) -> None:
    """Run a scenario (default: the essay preset) and write a run directory."""
    try:
        sc = resolve_scenario(scenario, preset, citizens, days, seed)
        # Everything that can be refused is refused before the simulation starts.
        base = out_dir if out_dir is not None else Path("runs") / sc.name
        check_target(base if out_dir is not None else fresh(base), force, TABLES)
        check_memory(sc)
        result = run_with_progress(sc)
        # The fresh name is chosen again when the run is complete: another run may have
        # taken this one meanwhile.
        target = result.write(base, report=report, force=force, fresh_name=out_dir is None)
    except (ScenarioError, OutputError, MemoryTooSmall) as e:
        fail(str(e))
    out.print(summary_table(result))
    shown = escape(str(target))
    out.print(f"run directory: [bold]{shown}[/]" +
              (f"  report: [bold]{shown}/report.html[/]" if report else ""))


def _check_writable(target: Path) -> None:
    """Refuse an unwritable output folder before spending time on the run."""
    parent = target
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise OutputError(f"{target}: cannot create the run directory ({parent} is a file)")
    import os

    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"{target}: cannot write the run directory ({parent} is not writable)")


@app.command()
def validate(scenario: Annotated[Path, typer.Argument(help="scenario TOML file")]) -> None:
    """Check a scenario file without running it."""
    try:
        sc = load_scenario(scenario)
    except ScenarioError as e:
        fail(str(e))
    out.print(f"[green]ok[/]: {escape(str(scenario))} — scenario {escape(repr(sc.name))}: "
              f"{len(sc.behaviours)} "
              f"behaviours, {len(sc.rules)} rules, {len(sc.tiers)} tiers, {len(sc.lists)} "
              f"lists, {len(sc.consequences)} consequences")


@presets_app.callback()
def presets(ctx: typer.Context) -> None:
    """List the presets (name and one line each)."""
    if ctx.invoked_subcommand is None:
        for name in preset_names():
            out.print(f"[bold]{name}[/]\t{escape(preset_summary(name))}", highlight=False,
                      soft_wrap=True)


@presets_app.command("show")
def presets_show(name: str) -> None:
    """Print a preset's TOML, ready to copy and edit."""
    try:
        sys.stdout.write(preset_text(name))
    except ScenarioError as e:
        fail(str(e))


@app.command()
def explain(
    run_dir: Annotated[Path, typer.Argument(help="run directory")],
    citizen: Annotated[int, typer.Argument(help="citizen id")],
) -> None:
    """One citizen's history: each score change, its rule and evidence, and the hidden
    truth beside it."""
    from metricpower.explain import history

    try:
        result = load_run(run_dir)
        text = history(result, citizen)
    except (ScenarioError, OutputError, ValueError) as e:
        fail(str(e))
    out.print(text)


# ---------------------------------------------------------------- compare and report
def _compare_side(spec: str, label: str, explicit_preset: bool):
    """One side of `compare`: ("run", Run) for a run directory, ("scenario", Scenario) for
    a scenario file or preset, or ("null", None) for the no-policy baseline."""
    if spec == "null":
        return "null", None
    path = Path(spec)
    if not explicit_preset:
        if path.is_dir():
            return "run", load_run(path)
        if path.is_file():
            return "scenario", load_scenario(path)
        if spec not in preset_names():
            raise ScenarioError(
                spec, f"{label} is not a run directory, a scenario file or a preset name "
                      f"(presets: {', '.join(preset_names())}; or `null`)")
    return "scenario", load_preset(spec)


def _with_settings(sc: Scenario, settings: dict) -> Scenario:
    if not settings:
        return sc
    data = sc.model_dump(mode="python")
    data["run"] = {**data["run"], **settings}
    return Scenario.model_validate(data)


@app.command("compare")
def compare_cmd(
    a: Annotated[str | None, typer.Argument(
        help="A, the policy: a scenario file, a run directory, a preset name or `null`")] = None,
    b: Annotated[str | None, typer.Argument(
        help="B, the baseline: the same kinds; `null` = A with no policy")] = None,
    preset_a: Annotated[str | None, typer.Option("--preset-a", help="A as a preset")] = None,
    preset_b: Annotated[str | None, typer.Option("--preset-b", help="B as a preset")] = None,
    citizens: Annotated[int | None, typer.Option(help="population size (scenarios)")] = None,
    days: Annotated[int | None, typer.Option(help="days to simulate (scenarios)")] = None,
    seed: Annotated[int | None, typer.Option(help="random seed (scenarios)")] = None,
    out_dir: Annotated[Path | None, typer.Option(
        "--out", help="folder for comparison.html and comparison.json")] = None,
    save_runs: Annotated[bool, typer.Option(
        help="also write the simulated runs' directories under --out (a/, b/)")] = False,
) -> None:
    """Compare two policies on the same population and seed (common random numbers): every
    metric for both, and the difference the policy makes."""
    from metricpower.compare import NotComparable, compare, describe, null_of

    positional = [x for x in (a, b) if x is not None]
    specs = []
    for label, preset in (("A", preset_a), ("B", preset_b)):
        if preset is not None:
            specs.append((label, preset, True))
        elif positional:
            specs.append((label, positional.pop(0), False))
        else:
            fail(f"give {label}: a scenario file, a run directory, a preset name or `null` "
                 f"(or --preset-{label.lower()})")
    if positional:
        fail(f"too many arguments: {positional}")
    settings = {k: v for k, v in (("citizens", citizens), ("days", days), ("seed", seed))
                if v is not None}
    try:
        sides = [_compare_side(spec, label, explicit)
                 for label, spec, explicit in specs]
        kinds = [k for k, _ in sides]
        if kinds == ["null", "null"]:
            fail("A and B cannot both be `null`")
        if settings and "run" in kinds:
            fail("--citizens/--days/--seed apply to scenarios; a run directory keeps its "
                 "own settings (the other side follows them)")
        # A run directory fixes the settings for a scenario on the other side.
        for i, (kind, value) in enumerate(sides):
            if kind == "run":
                other = 1 - i
                if sides[other][0] == "scenario":
                    rs = value.scenario.run
                    sides[other] = ("scenario", _with_settings(
                        sides[other][1], {"citizens": rs.citizens, "days": rs.days,
                                          "seed": rs.seed}))
        for i, (kind, value) in enumerate(sides):
            if kind == "scenario":
                sides[i] = ("scenario", _with_settings(value, settings))
        for i, (kind, _) in enumerate(sides):
            if kind == "null":
                other_kind, other = sides[1 - i]
                base = other.scenario if other_kind == "run" else other
                sides[i] = ("scenario", null_of(base))
        names = []
        for (kind, value), (_label, spec, _) in zip(sides, specs, strict=True):
            sc = value.scenario if kind == "run" else value
            names.append(Path(spec).name if kind == "run" else sc.name)
        from metricpower.compare import check_comparable

        check_comparable(*[v.scenario if k == "run" else v for k, v in sides], *names)
        target = out_dir or Path("runs") / f"compare-{names[0]}-vs-{names[1]}"
        _check_writable(target)
        runs = [value if kind == "run" else run_with_progress(value) for kind, value in sides]
        result = compare(runs[0], runs[1], names[0], names[1])
        report_path = result.write(target)
        if save_runs:
            for (kind, _), run_, sub in zip(sides, runs, ("a", "b"), strict=True):
                if kind == "scenario":
                    # The comparison's own runs: rewritten with the comparison.
                    run_.write(Path(target) / sub, force=True)
    except NotComparable as e:
        fail(str(e))
    except (ScenarioError, OutputError, MemoryTooSmall) as e:
        fail(str(e))
    e = result.effects
    name_a, name_b = escape(result.name_a), escape(result.name_b)
    table = Table(title=f"{name_a} vs {name_b} (difference = A − B)")
    for col, justify in (("effect", "left"), (name_a, "right"),
                         (name_b, "right"), ("difference", "right")):
        table.add_column(col, justify=justify)
    for name, eff in e["sanctions"].items():
        table.add_row(f"sanction: {escape(name)}", describe(eff["a"]), describe(eff["b"]),
                      describe(eff["difference"]))
    for key in ("sanctions_total", "citizens_sanctioned", "penalties", "wrongful_penalties",
                "wrongful_sanctions", "score_gini", "income_gini"):
        eff = e[key]
        table.add_row(key.replace("_", " "), describe(eff["a"]), describe(eff["b"]),
                      describe(eff["difference"]))
    table.add_row("acts chilled", "", "", describe(e.get("acts_chilled")))
    table.add_row("lawful acts chilled", "", "", describe(e.get("lawful_acts_chilled")))
    out.print(table)
    for note in result.notes:
        out.print(f"[yellow]note:[/] {escape(note)}")
    out.print(f"comparison report: [bold]{escape(str(report_path))}[/]")


@app.command("report")
def report_cmd(
    run_dir: Annotated[Path, typer.Argument(help="run directory")],
    out_path: Annotated[Path | None, typer.Option(
        "--out", help="where to write the report (default: RUN/report.html)")] = None,
) -> None:
    """Write a run's self-contained HTML report (opens offline)."""
    from metricpower.report import render_report

    try:
        result = load_run(run_dir)
        target = out_path or Path(run_dir) / "report.html"
        html = render_report(result)
        path = write_file(target, lambda tmp: tmp.write_text(html, encoding="utf-8"))
    except (ScenarioError, OutputError) as e:
        fail(str(e))
    out.print(f"report: [bold]{escape(str(path))}[/]")
