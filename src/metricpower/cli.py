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

from metricpower.checkpoints import CheckpointError, Checkpoints
from metricpower.memory import MemoryTooSmall, check_memory
from metricpower.report.labels import on_list
from metricpower.runs import TABLES, Run, backend_for, load_run, simulate
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
                     days: int | None, seed: int | None, backend: str | None = None) -> Scenario:
    run = {k: v for k, v in (("citizens", citizens), ("days", days), ("seed", seed),
                             ("backend", backend)) if v is not None}
    overrides = {"run": run} if run else None
    if scenario is not None and preset is not None:
        fail("give a scenario file or --preset, not both")
    if scenario is not None:
        return load_scenario(scenario, overrides)
    return load_preset(preset or "essay", overrides)


ONLY_HELP = ("keep only mechanics this well supported: documented, partly, reported "
             "(and better); drops the rest, saying what")


def restrict(sc: Scenario, level: str | None) -> Scenario:
    """`sc` cut down to its mechanics at provenance `level` or better (None: all), with
    what was dropped said on stderr."""
    if level is None:
        return sc
    from metricpower.scenario.only import only
    from metricpower.scenario.schema import PROVENANCE

    if level not in PROVENANCE:
        fail(f"--only: expected one of {', '.join(PROVENANCE)}; found {level!r}")
    sc, dropped = only(sc, level)
    err.print(f"--only {level}: dropped {len(dropped)} "
              + ("; ".join(escape(d) for d in dropped) if dropped else "(nothing)"),
              highlight=False, soft_wrap=True)
    return sc


def run_with_progress(scenario: Scenario, population=None,
                      checkpoints: Checkpoints | None = None) -> Run:
    n, days = scenario.run.citizens, scenario.run.days
    start = time.perf_counter()
    first = checkpoints.saved["day"] + 1 if checkpoints and checkpoints.saved else 0
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("days"), TimeElapsedColumn(), TextColumn("{task.fields[speed]}"))
    with Progress(*columns, console=err, transient=False) as progress:
        task = progress.add_task(f"{escape(scenario.name)}: {n:,} citizens", total=days,
                                 completed=first, speed="")

        def tick(day: int) -> None:
            rate = n * (day + 1 - first) / max(time.perf_counter() - start, 1e-9)
            progress.update(task, completed=day + 1, speed=f"{rate:,.0f} citizen-days/s")

        return simulate(scenario, progress=tick, population=population,
                        checkpoints=checkpoints)


def summary_table(run: Run) -> Table:
    """The headline numbers; every name from the scenario is escaped (Rich markup)."""
    m = run.metrics
    table = Table(title=f"{escape(str(m['scenario']))}: {m['citizens']:,} citizens, "
                        f"{m['days']} days, seed {m['seed']}")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_row("mean score (start → end)", f"{m['initial_score']} → {m['mean_score']:.1f}")
    for tier, share in m["tier_shares"].items():
        table.add_row(f"citizens in tier {escape(tier)}", f"{share:.1%}")
    for name, size in m["list_sizes"].items():
        table.add_row(f"citizens {escape(on_list(name))}", f"{size:,}")
    p = m["penalties"]
    table.add_row("penalties", f"{p['total']:,}")
    table.add_row("  with a benign hidden context", f"{p['benign_context']:,} "
                                                   f"({p['benign_context_share']:.1%})")
    table.add_row("  misattributed (false matches)", f"{p['misattributed']:,}")
    table.add_row("  misattributed per 100,000 citizens",
                  f"{p['misattributed_per_100k']:,.1f}")
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
    only_level: Annotated[str | None, typer.Option("--only", help=ONLY_HELP)] = None,
    checkpoint_every: Annotated[int | None, typer.Option(
        min=0, help="days between checkpoints (0: none; default: as often as keeps their "
                    "cost within 2% of the run's time)")] = None,
    backend: Annotated[str | None, typer.Option(
        help="cpu, or gpu (CuPy on a CUDA device: the gpu extra)")] = None,
) -> None:
    """Run a scenario (default: the essay preset) and write a run directory. A run
    killed on the way can be finished with `metricpower resume`."""
    try:
        sc = restrict(resolve_scenario(scenario, preset, citizens, days, seed, backend),
                      only_level)
        # Everything that can be refused is refused before the simulation starts.
        base = out_dir if out_dir is not None else Path("runs") / sc.name
        first = base if out_dir is not None else fresh(base)
        check_target(first, force, TABLES)
        check_memory(sc, backend_for(sc))
        checkpoints = (None if checkpoint_every == 0 else
                       Checkpoints.begin(sc, first, report, checkpoint_every))
        result = run_with_progress(sc, checkpoints=checkpoints)
        # The fresh name is chosen again when the run is complete: another run may have
        # taken this one meanwhile.
        target = result.write(base, report=report, force=force, fresh_name=out_dir is None)
        if checkpoints is not None:
            checkpoints.finish()
    except (ScenarioError, OutputError, CheckpointError, MemoryTooSmall) as e:
        fail(str(e))
    _finished(result, target, report)


@app.command()
def resume(run_dir: Annotated[Path, typer.Argument(
        help="the interrupted run: its --out folder, or its .NAME.partial folder")]) -> None:
    """Finish a run that was killed: go on from its last checkpoint, with the tables an
    uninterrupted run would have written."""
    try:
        checkpoints = Checkpoints.reopen(run_dir)
        if checkpoints.saved is None:
            err.print("no checkpoint was written yet: the run starts again from day 0")
        check_memory(checkpoints.scenario, backend_for(checkpoints.scenario))
        result = run_with_progress(checkpoints.scenario, checkpoints=checkpoints)
        target = result.write(checkpoints.out, report=checkpoints.report)
        checkpoints.finish()
    except (ScenarioError, OutputError, CheckpointError, MemoryTooSmall) as e:
        fail(str(e))
    _finished(result, target, checkpoints.report)


def _finished(result: Run, target: Path, report: bool) -> None:
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
    seeds: Annotated[int | None, typer.Option(
        help="run both on this many seeds; effects as paired differences with 95% "
             "intervals")] = None,
    out_dir: Annotated[Path | None, typer.Option(
        "--out", help="folder for comparison.html and comparison.json")] = None,
    save_runs: Annotated[bool, typer.Option(
        help="also write the simulated runs' directories under --out (a/, b/)")] = False,
    ray: Annotated[bool, typer.Option("--ray", help="with --seeds: run on Ray")] = False,
    address: Annotated[str | None, typer.Option(help="with --seeds: a Ray cluster")] = None,
    workers: Annotated[int | None, typer.Option(help="with --seeds: processes")] = None,
    resume: Annotated[bool, typer.Option(help="with --seeds: continue --out")] = False,
    batch: Annotated[int | None, typer.Option(
        min=0, help="with --seeds: members side by side in one engine, up to this many "
                    "citizens (0: each member alone; default: "
                    "ensembles.plan.BATCH_CITIZENS)")] = None,
    only_level: Annotated[str | None, typer.Option(
        "--only", help=ONLY_HELP + "; applies to each side given as a scenario or preset")] = None,
) -> None:
    """Compare two policies on the same population and seed (common random numbers): every
    metric for both, and the difference the policy makes."""
    if seeds and seeds > 1:  # one seed: one process runs both sides
        _start_pool(ray, address, workers)
    from metricpower.compare import NotComparable, compare, describe, sides
    from metricpower.ensembles import ExtraMissing, PlanError

    positional = [x for x in (a, b) if x is not None]
    specs = []
    for label, preset in (("A", preset_a), ("B", preset_b)):
        if preset is not None:
            specs.append((preset, True))
        elif positional:
            specs.append((positional.pop(0), False))
        else:
            fail(f"give {label}: a scenario file, a run directory, a preset name or `null` "
                 f"(or --preset-{label.lower()})")
    if positional:
        fail(f"too many arguments: {positional}")
    try:
        given = [load_preset(spec) if explicit and spec != "null" else spec
                 for spec, explicit in specs]
        pair = sides(*given, citizens=citizens, days=days, seed=seed)
        pair.a, pair.b = (s if isinstance(s, Run) else restrict(s, only_level)
                          for s in (pair.a, pair.b))
        target = out_dir or Path("runs") / f"compare-{pair.name_a}-vs-{pair.name_b}"
        _check_writable(target)
        if seeds is not None:
            result = compare(pair.a, pair.b, pair.name_a, pair.name_b, seeds=seeds, out=target,
                             resume=resume, **_run_options(ray, address, workers, batch),
                             progress=_members_progress(f"{pair.name_a} vs {pair.name_b}"))
            _print_summary(result)
            return
        result = compare(pair.a, pair.b, pair.name_a, pair.name_b,
                         runner=lambda sc, pop: run_with_progress(sc, pop))
        report_path = result.write(target)
        if save_runs:
            for side, run_, sub in ((pair.a, result.a, "a"), (pair.b, result.b, "b")):
                if not isinstance(side, Run):
                    # The comparison's own runs: rewritten with the comparison.
                    run_.write(Path(target) / sub, force=True)
    except (NotComparable, ScenarioError, OutputError, MemoryTooSmall, ExtraMissing,
            PlanError) as e:
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


# ---------------------------------------------------------------- ensembles and sweeps
def _start_pool(ray: bool, address: str | None, workers: int | None) -> None:
    """Start the process pool's fork server first thing, when the pool will run members:
    its imports then run beside this process's own (`metricpower.forkserver`)."""
    from metricpower.forkserver import cores, start

    if not (ray or address) and (workers or cores()) > 1:
        start()


def _run_options(ray: bool, address: str | None, workers: int | None,
                 batch: int | None) -> dict:
    """Where the members run, and how many citizens side by side (when given)."""
    from metricpower.ensembles import executor_of

    return {"executor": executor_of(ray, address, workers)} | (
        {} if batch is None else {"batch": batch})


def _members_progress(title: str):
    progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(),
                        MofNCompleteColumn(), TextColumn("members"), TimeElapsedColumn(),
                        console=err, transient=False)
    task = None

    def tick(done: int, total: int) -> None:
        nonlocal task
        if task is None:
            progress.start()
            task = progress.add_task(title, total=total)
        progress.update(task, completed=done)
        if done == total:
            progress.stop()

    return tick


def _print_summary(results) -> None:
    """Headline metrics by arm (a paired comparison: its effects), each as mean [95%
    interval] over seeds (`ensembles.stats.INTERVAL`)."""
    import polars as pl

    from metricpower.ensembles.results import EFFECTS
    from metricpower.report.ensemble import interval
    from metricpower.report.labels import metric_label

    if results.kind == "compare":
        effects = results.effects()
        table = Table(title=f"{results.arms[0]} − {results.arms[1]}: paired difference over "
                            f"{len(results.plan['seeds'])} seeds, mean [95% t-interval]")
        table.add_column("effect")
        table.add_column("A − B", justify="right")
        for r in effects.filter(pl.col("metric").is_in(EFFECTS)).iter_rows(named=True):
            table.add_row(escape(metric_label(r["metric"].removeprefix("effects."))),
                          interval(r["metric"], r["mean"], r["lo"], r["hi"]))
        out.print(table)
        out.print(f"tidy table: [bold]{results.out / 'results.parquet'}[/]  "
                  f"report: [bold]{results.out / 'report.html'}[/]")
        return
    rows = results.summary()
    metrics = [m for m in results.headline() if m in set(rows["metric"])][:4]
    table = Table(title=f"{results!r}: mean [95% interval, within the metric's range]")
    table.add_column("arm")
    for m in metrics:
        table.add_column(escape(metric_label(m)), justify="right")
    arms = list(dict.fromkeys(rows["arm"])) if "arm" in rows.columns else results.arms
    for arm in arms:
        mine = rows.filter(pl.col("arm") == arm) if "arm" in rows.columns else rows
        cells = {r["metric"]: interval(r["metric"], r["mean"], r["lo"], r["hi"])
                 for r in mine.iter_rows(named=True)}
        table.add_row(arm, *(cells.get(m, "") for m in metrics))
    out.print(table)
    out.print(f"tidy table: [bold]{results.out / 'results.parquet'}[/]  "
              f"report: [bold]{results.out / 'report.html'}[/]")


@app.command()
def ensemble(
    scenario: Annotated[str, typer.Argument(help="scenario TOML file or preset name")],
    seeds: Annotated[int, typer.Option(help="number of replicates (seeds)")] = 10,
    citizens: Annotated[int | None, typer.Option(help="population size")] = None,
    days: Annotated[int | None, typer.Option(help="days to simulate")] = None,
    seed: Annotated[int | None, typer.Option(help="first seed")] = None,
    out_dir: Annotated[Path | None, typer.Option("--out", help="ensemble folder")] = None,
    ray: Annotated[bool, typer.Option("--ray", help="run on Ray (the `ray` extra)")] = False,
    address: Annotated[str | None, typer.Option(help="a Ray cluster's address")] = None,
    workers: Annotated[int | None, typer.Option(help="processes (default: all cores)")] = None,
    resume: Annotated[bool, typer.Option(help="continue an interrupted --out")] = False,
    member_reports: Annotated[bool, typer.Option(
        help="write each member's report.html too")] = False,
    batch: Annotated[int | None, typer.Option(
        min=0, help="members side by side in one engine, up to this many citizens (0: each "
                    "member alone; default: ensembles.plan.BATCH_CITIZENS)")] = None,
) -> None:
    """Run a scenario on N seeds: every metric's mean with its 95% interval, one tidy table
    (member, seed, metric, value), each member's run directory."""
    if seeds > 1:
        _start_pool(ray, address, workers)
    from metricpower.ensembles import ExtraMissing, PlanError
    from metricpower.ensembles import ensemble as run_ensemble

    try:
        sc = _scenario_arg(scenario, citizens, days, seed)
        target = out_dir or Path("runs") / f"{sc.name}-ensemble"
        _check_writable(target)
        results = run_ensemble(sc, seeds, target, resume=resume, reports=member_reports,
                               progress=_members_progress(sc.name),
                               **_run_options(ray, address, workers, batch))
    except (ScenarioError, OutputError, MemoryTooSmall, ExtraMissing, PlanError) as e:
        fail(str(e))
    _print_summary(results)


@app.command()
def sweep(
    scenario: Annotated[str, typer.Argument(help="scenario TOML file or preset name")],
    grid: Annotated[Path, typer.Option(
        help="GRID.toml: a \\[grid] table or \\[\\[arms]] entries")],
    seeds: Annotated[int | None, typer.Option(help="seeds per arm (default: the grid's, "
                                                    "else 1)")] = None,
    citizens: Annotated[int | None, typer.Option(help="population size")] = None,
    days: Annotated[int | None, typer.Option(help="days to simulate")] = None,
    seed: Annotated[int | None, typer.Option(help="first seed")] = None,
    out_dir: Annotated[Path | None, typer.Option("--out", help="sweep folder")] = None,
    ray: Annotated[bool, typer.Option("--ray", help="run on Ray (the `ray` extra)")] = False,
    address: Annotated[str | None, typer.Option(help="a Ray cluster's address")] = None,
    workers: Annotated[int | None, typer.Option(help="processes (default: all cores)")] = None,
    resume: Annotated[bool, typer.Option(help="continue an interrupted --out")] = False,
    member_reports: Annotated[bool, typer.Option(
        help="write each member's report.html too")] = False,
    batch: Annotated[int | None, typer.Option(
        min=0, help="members side by side in one engine, up to this many citizens (0: each "
                    "member alone; default: ensembles.plan.BATCH_CITIZENS)")] = None,
) -> None:
    """Run a grid of overrides over scenario keys, every arm on the same seeds and
    populations (common random numbers): metrics with intervals, effects against the
    baseline arm, which parameters move the headline numbers."""
    _start_pool(ray, address, workers)
    from metricpower.ensembles import ExtraMissing, PlanError
    from metricpower.ensembles import sweep as run_sweep

    try:
        sc = _scenario_arg(scenario, citizens, days, seed)
        target = out_dir or Path("runs") / f"{sc.name}-sweep"
        _check_writable(target)
        results = run_sweep(sc, grid, seeds, target, resume=resume, reports=member_reports,
                            progress=_members_progress(sc.name),
                            **_run_options(ray, address, workers, batch))
    except (ScenarioError, OutputError, MemoryTooSmall, ExtraMissing, PlanError) as e:
        fail(str(e))
    _print_summary(results)


def _scenario_arg(spec: str, citizens, days, seed) -> Scenario:
    path = Path(spec)
    if path.suffix == ".toml" or path.exists():
        return resolve_scenario(path, None, citizens, days, seed)
    return resolve_scenario(None, spec, citizens, days, seed)


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


@app.command("serve")
def serve_cmd(
    runs_dir: Annotated[Path, typer.Argument(help="the runs folder to serve")] = Path("runs"),
    host: Annotated[str, typer.Option(
        help="address to listen on; anything but 127.0.0.1 lets other machines in")] =
    "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 8000,
) -> None:
    """A local web app over a runs folder: browse runs, ensembles and sweeps, interactive
    charts, compare two runs or two ensembles (with intervals), explain a citizen, start
    new runs from a preset."""
    from metricpower.web import MissingExtra, require

    try:
        require()
    except MissingExtra as e:
        fail(str(e))
    if runs_dir.exists() and not runs_dir.is_dir():
        fail(f"{runs_dir}: not a folder")
    from metricpower.web.app import serve

    if host not in ("127.0.0.1", "localhost", "::1"):
        err.print(f"[bold red]WARNING: serving on {escape(host)}: other machines that can "
                  "reach this address can read every run in the folder and start runs "
                  "here. There is no login.[/]", highlight=False, soft_wrap=True)
    out.print(f"metricpower dashboard for [bold]{escape(str(runs_dir))}[/] at "
              f"[bold]http://{escape(host)}:{port}/[/]  (Ctrl-C stops it)", highlight=False,
              soft_wrap=True)
    serve(runs_dir, host=host, port=port)


@app.command("calibrate")
def calibrate_cmd(
    preset: Annotated[str, typer.Argument(help="preset with a calibration spec "
                                               "(court_blacklist)")],
    out_dir: Annotated[Path | None, typer.Option(
        "--out", help="study, report and tables (default: runs/calibrate-PRESET); "
                      "an interrupted calibration resumes from here")] = None,
    trials: Annotated[int, typer.Option(min=1, help="finished trials wanted in all")] = 40,
    replicates: Annotated[int, typer.Option(
        min=1, help="seeds per trial (the same in every trial)")] = 3,
    citizens: Annotated[int | None, typer.Option(min=100, help="citizens per run")] = None,
    seed: Annotated[int, typer.Option(min=0, help="first replicate seed; sampler seed")] = 1,
    workers: Annotated[int, typer.Option(min=1, help="processes running replicates")] = 1,
    save: Annotated[bool, typer.Option(
        "--save", help="write the fitted values into the package's preset (and the "
                       "held-out table beside it), so `run --preset` uses them")] = False,
) -> None:
    """Fit a preset's free parameters to its published series (Optuna); hold out the
    latest dates; write a calibration report."""
    from metricpower.calibrate import CalibrationError, calibrate, write_outputs
    from metricpower.calibrate import save as save_fitted

    target = out_dir or Path("runs") / f"calibrate-{preset}"
    start = time.perf_counter()
    try:
        _check_writable(target)

        def tick(done: int, total: int, value: float) -> None:
            err.print(f"trial {done}/{total}: objective {value:.3g} "
                      f"({time.perf_counter() - start:.0f} s)", highlight=False)

        result = calibrate(preset, target, trials=trials, replicates=replicates,
                           citizens=citizens, seed=seed, workers=workers, progress=tick)
        paths = write_outputs(result, target)
        saved = save_fitted(result) if save else []
    except (CalibrationError, ScenarioError, OutputError) as e:
        fail(str(e))
    table = Table(title=f"{preset}: held-out dates (scaled; {result.trials} trials)")
    for col in ("date", "quantity", "observed", "simulated", "error"):
        table.add_column(col, justify="left" if col in ("date", "quantity") else "right")
    for r in result.table():
        if not r["fitted"]:
            table.add_row(r["date"], r["quantity"], f"{r['observed']:,.0f}",
                          f"{r['simulated']:,.0f}", f"{100 * r['error']:+.1f}%")
    out.print(table)
    for name, value in result.best.items():
        low, high = result.spread[name]
        out.print(f"{name} = {value:.4g}  (best quarter {low:.3g} to {high:.3g})")
    out.print(f"report: [bold]{paths['report']}[/]  ({result.seconds / 60:.1f} min)")
    for path in saved:
        out.print(f"saved: [bold]{path}[/]")
