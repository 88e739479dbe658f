"""New runs started from the dashboard's form: the form read into scenario overrides,
validated as the command line validates them, and run in a process of its own with live
progress: runs started at once run side by side without sharing memory (the engine's
parallel kernels may not be entered from two threads of one process), and a run that dies
cannot take the server with it. Every job writes its own new folder (a name no other job
can take) through `Run.write`, which renames a finished temporary folder into place, so
two tabs starting runs at once never share or half-see a folder."""

from __future__ import annotations

import multiprocessing
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from metricpower.memory import MemoryTooSmall
from metricpower.runs import OutputError, simulate
from metricpower.scenario import Scenario, ScenarioError, load_preset

#: Response switches the form offers (each response's `enabled`).
SWITCHES = ("deterrence", "association", "economy", "prediction", "appeals")
#: Rules whose points the form offers: event rules, in the preset's order, at most this many.
MAX_RULES = 8


class FormError(ValueError):
    """A form field that is not a number where one is needed."""


def form_fields(preset: str) -> dict:
    """The form's fields and their values in `preset` (for the form's defaults)."""
    sc = load_preset(preset)
    rules = [r for r in sc.rules if r.kind == "event"][:MAX_RULES]
    cameras = [s for s in sc.sensors if s.false_match_rate > 0]
    return {
        "citizens": sc.run.citizens, "days": sc.run.days, "seed": sc.run.seed,
        "rules": [(r.name, r.points) for r in rules],
        "false_match": bool(cameras),
        "switches": [(name, getattr(sc.responses, name).enabled) for name in SWITCHES],
    }


def _int(form, key: str, what: str) -> int | None:
    raw = str(form.get(key, "")).strip().replace(",", "").replace("_", "")
    if raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise FormError(f"{what}: expected a whole number, found {raw!r}") from None


def _float(form, key: str, what: str) -> float | None:
    raw = str(form.get(key, "")).strip()
    if raw == "":
        return None
    try:
        value = float(raw)
    except ValueError:
        raise FormError(f"{what}: expected a number, found {raw!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise FormError(f"{what}: expected a finite number, found {raw!r}")
    return value


def scenario_from_form(form) -> Scenario:
    """The scenario a submitted form asks for: the preset with the form's values as
    overrides, validated by the same code (and so with the same messages) as
    `metricpower run --preset`. Raises ScenarioError or FormError."""
    preset = str(form.get("preset", "essay"))
    base = load_preset(preset)
    run = {k: v for k, v in (("citizens", _int(form, "citizens", "citizens")),
                             ("days", _int(form, "days", "days")),
                             ("seed", _int(form, "seed", "seed"))) if v is not None}
    overrides: dict = {"run": run} if run else {}
    rules = []
    for r in base.rules:
        points = _int(form, f"rule:{r.name}", f"points of rule {r.name!r}")
        if points is not None and points != r.points:
            rules.append({"name": r.name, "points": points})
    if rules:
        overrides["rules"] = rules
    factor = _float(form, "false_match_factor", "false-match factor")
    if factor is not None and factor != 1:
        overrides["sensors"] = [{"name": s.name, "false_match_rate": s.false_match_rate * factor}
                                for s in base.sensors if s.false_match_rate > 0]
    if "switches" in form:
        # A checkbox sends its name only when ticked; `switches` marks a form that had them.
        on = set(form.getlist("response") if hasattr(form, "getlist") else
                 form.get("response", []))
        overrides["responses"] = {name: {"enabled": name in on} for name in SWITCHES}
    return load_preset(preset, overrides or None)


#: A job's states, as the child process reports them through a shared integer.
STATES = ("queued", "running", "writing", "done", "failed")


def _work(scenario: Scenario, out: str, day, state, errors) -> None:
    """The child process: simulate, write, report progress and any error."""
    def tick(d: int) -> None:
        day.value = d + 1

    try:
        state.value = STATES.index("running")
        result = simulate(scenario, progress=tick)
        state.value = STATES.index("writing")
        result.write(out)
        state.value = STATES.index("done")
    except (ScenarioError, OutputError, MemoryTooSmall) as e:
        errors.send(str(e))
        state.value = STATES.index("failed")
    except Exception as e:  # reported on the run's page; the server goes on
        errors.send(f"{type(e).__name__}: {e}")
        state.value = STATES.index("failed")


@dataclass
class Job:
    id: str
    scenario: Scenario
    out: Path
    name: str                       # the run's folder, relative to the runs folder
    day: object = None              # shared integers, written by the child process
    code: object = None
    error: str = ""
    started: float = field(default_factory=time.time)
    finished: float | None = None

    @property
    def state(self) -> str:
        return STATES[self.code.value]

    def as_dict(self) -> dict:
        return {"id": self.id, "state": self.state, "day": self.day.value,
                "days": self.scenario.run.days, "citizens": self.scenario.run.citizens,
                "scenario": self.scenario.name, "run": self.name, "error": self.error,
                "elapsed": round((self.finished or time.time()) - self.started, 1)}


class Jobs:
    def __init__(self, root: Path):
        self.root = root
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        # spawn: a fresh interpreter, never a fork of the server's threads
        self._ctx = multiprocessing.get_context("spawn")

    def start(self, scenario: Scenario) -> Job:
        job_id = uuid.uuid4().hex[:12]
        stamp = time.strftime("%Y%m%d-%H%M%S")
        name = f"{scenario.name}-{stamp}-{job_id[:6]}"
        job = Job(job_id, scenario, self.root / name, name, self._ctx.Value("i", 0),
                  self._ctx.Value("i", 0))
        with self._lock:
            self._jobs[job_id] = job
        receive, send = self._ctx.Pipe(duplex=False)
        proc = self._ctx.Process(target=_work, name=f"metricpower-run-{job_id}", daemon=True,
                                 args=(scenario, str(job.out), job.day, job.code, send))
        proc.start()
        send.close()
        threading.Thread(target=self._watch, args=(job, proc, receive), daemon=True).start()
        return job

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def _watch(self, job: Job, proc, receive) -> None:
        proc.join()
        if receive.poll():
            job.error = receive.recv()
        if job.state != "done" and not job.error:
            job.error = f"the run stopped unexpectedly (exit code {proc.exitcode})"
        if job.error:
            job.code.value = STATES.index("failed")
        job.finished = time.time()
        receive.close()


__all__ = ["MAX_RULES", "STATES", "SWITCHES", "FormError", "Job", "Jobs", "form_fields",
           "scenario_from_form"]
