"""A citizen's history as the system wrote it, with the hidden truth beside it."""

from __future__ import annotations

import pyarrow.compute as pc
from rich.console import Group
from rich.markup import escape
from rich.table import Table

from metricpower.ledger.schema import CITIZENS
from metricpower.runs import Run


def truth(rule_kind: str, benign: bool, misattributed: bool) -> str:
    if misattributed:
        return "[red]misattributed: someone else's act[/]"
    if benign:
        return "[yellow]benign: a reason no sensor sees[/]"
    if rule_kind == "event":
        return "as recorded"
    return "no act: derived from state"


def history(run: Run, citizen: int) -> Group:
    citizens = run.tables["citizens"]
    if not 0 <= citizen < citizens.num_rows:
        raise ValueError(f"citizen {citizen} is not in this run (ids 0 to "
                         f"{citizens.num_rows - 1})")
    row = citizens.slice(citizen, 1).to_pylist()[0]
    sc = run.scenario
    rules = {r.name: r for r in sc.rules}
    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold")
    head.add_column()
    head.add_row("citizen", f"{citizen}  ({escape(row['group'])}, {escape(row['region'])}, "
                            f"{'urban' if row['urban'] else 'rural'})")
    head.add_row("score", f"{sc.population.initial_score} → {row['score']}  "
                          f"(tier {escape(row['tier'])})")
    lists = [escape(s.name) for s in sc.lists if row[CITIZENS["on", s.name]]]
    head.add_row("lists now", ", ".join(lists) or "none")
    # A list left shows as days listed without being on it now.
    left = [f"{s.name} ({row[f'days_on_{s.name}']} days listed)" for s in sc.lists
            if row[f"days_on_{s.name}"] > 0 and not row[f"on_{s.name}"]]
    if left:
        head.add_row("lists left", ", ".join(left))
    head.add_row("sanctions / rewards", f"{row['sanctions']} / {row['rewards']}")
    head.add_row("income index", f"{row['income']:.2f} → {row['income_final']:.2f}")
    if row["flagged"]:
        head.add_row("risk model", "[red]flagged as likely to fall to the bottom[/]")
    if row["pets_confiscated"]:
        head.add_row("pet", "[red]confiscated[/]")
    head.add_row("hidden true conduct", f"{row['conduct']:.2f} (1 = never breaks a rule; "
                                         "the system never sees this)")
    parts: list = [head]
    if not row["in_ledger"]:
        parts.append("This citizen is outside the ledger sample kept for this run: "
                     "their score changes were counted in the aggregates only.")
        return Group(*parts)
    ledger = run.tables["ledger"]
    mine = ledger.filter(pc.equal(ledger["citizen"], citizen)).to_pylist()
    table = Table(title=f"{len(mine)} score changes")
    for col, justify in (("day", "right"), ("rule", "left"), ("evidence", "left"),
                         ("points", "right"), ("score", "right"), ("provenance", "left"),
                         ("hidden truth", "left")):
        table.add_column(col, justify=justify)
    score = sc.population.initial_score
    reversed_on = {e["reverses"]: e["day"] for e in mine if e["reverses"] >= 0}
    for e in mine:
        score += e["points"]
        rule = rules[e["rule"]]
        evidence = (f"{escape(e['behaviour'])} seen by {escape(e['sensor'])}" if e["behaviour"]
                    else rule.kind)
        hidden = truth(rule.kind, e["benign"], e["misattributed"])
        if e["reverses"] >= 0:
            evidence = f"appeal upheld: undoes #{e['reverses']}"
        elif e["entry"] in reversed_on:
            hidden += f" [green](reversed on appeal, day {reversed_on[e['entry']]})[/]"
        table.add_row(f"{e['day']}", f"#{e['entry']} {escape(e['rule'])}", evidence,
                      f"{e['points']:+d}", str(score), rule.provenance, hidden)
    parts.append(table)
    return Group(*parts)
