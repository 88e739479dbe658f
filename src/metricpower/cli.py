"""The command line: `metricpower run | validate | presets | explain | …`."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from metricpower.runs import OutputError, Run, load_run, simulate
from metricpower.scenario import (
    Scenario,
    ScenarioError,
    load_preset,
    load_scenario,
    preset_names,
    preset_summary,
    preset_text,
)

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="A social credit system, executable, on a synthetic population.")
presets_app = typer.Typer(help="List the shipped presets, or show one as TOML.",
                          invoke_without_command=True)
app.add_typer(presets_app, name="presets")
out = Console()
err = Console(stderr=True)


def fail(message: str) -> None:
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
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
        task = progress.add_task(f"{scenario.name}: {n:,} citizens", total=days, speed="")

        def tick(day: int) -> None:
            rate = n * (day + 1) / max(time.perf_counter() - start, 1e-9)
            progress.update(task, completed=day + 1, speed=f"{rate:,.0f} citizen-days/s")

        return simulate(scenario, progress=tick)


def summary_table(run: Run) -> Table:
    m = run.metrics
    table = Table(title=f"{m['scenario']}: {m['citizens']:,} citizens, {m['days']} days, "
                        f"seed {m['seed']}")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_row("mean score (start → end)", f"{m['initial_score']} → {m['mean_score']:.1f}")
    for tier, share in m["tier_shares"].items():
        table.add_row(f"tier {tier}", f"{share:.1%}")
    for name, size in m["list_sizes"].items():
        table.add_row(f"on {name}", f"{size:,}")
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
    out_dir: Annotated[Path | None, typer.Option("--out", help="run directory")] = None,
    report: Annotated[bool, typer.Option(help="write report.html")] = True,
) -> None:
    """Run a scenario (default: the essay preset) and write a run directory."""
    try:
        sc = resolve_scenario(scenario, preset, citizens, days, seed)
        target = out_dir or Path("runs") / sc.name
        _check_writable(target)
        result = run_with_progress(sc)
        result.write(target, report=report)
    except (ScenarioError, OutputError) as e:
        fail(str(e))
    out.print(summary_table(result))
    out.print(f"run directory: [bold]{target}[/]" +
              (f"  report: [bold]{target / 'report.html'}[/]" if report else ""))


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
    out.print(f"[green]ok[/]: {scenario} — scenario {sc.name!r}: {len(sc.behaviours)} "
              f"behaviours, {len(sc.rules)} rules, {len(sc.tiers)} tiers, {len(sc.lists)} "
              f"lists, {len(sc.consequences)} consequences")


@presets_app.callback()
def presets(ctx: typer.Context) -> None:
    """List the presets (name and one line each)."""
    if ctx.invoked_subcommand is None:
        for name in preset_names():
            out.print(f"[bold]{name}[/]\t{preset_summary(name)}", highlight=False)


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


def main() -> None:
    app()
