"""Deterrence: citizens do less of what would cost them points where they feel watched —
benign acts too (nobody can show the camera their reason).

What an act would cost is what the rules would take for it if it were seen: a rule with
a condition counts only where the condition would hold with the act counted (so
`count('game_purchase', 30) > 3` deters a fourth purchase in a month, not the first),
and a capped rule only as far as its cap has room. The condition is evaluated for the
day's candidates only, on the state at the start of the day: the citizen weighs the next
act, not a plan for the month."""

from __future__ import annotations

import numpy as np

from metricpower.engine.responses.base import Response, register


@register
class Deterrence(Response):
    name = "deterrence"

    def __init__(self, engine):
        super().__init__(engine)
        sc = engine.scenario
        spec = sc.responses.deterrence
        # Per behaviour: the rate factor is exp(watched · points at stake), watched being
        # -elasticity · P(seen) / 10, worked out for the day's candidates (not kept per
        # citizen: it follows from where they live). `fixed`: the points of the rules
        # that always apply; `checked`: the rules with a condition or a cap, worked out
        # per act; None where no rule takes points for the behaviour.
        self.elasticity: list[float | None] = []
        self.fixed: list[float] = []
        self.checked: list[list[int]] = []
        for b in sc.behaviours:
            rules = [ri for ri, r in enumerate(sc.rules)
                     if r.kind == "event" and r.behaviour == b.name and r.is_penalty]
            checked = [ri for ri in rules if sc.rules[ri].when is not None or sc.rules[ri].cap]
            self.elasticity.append(spec.elasticity.get(b.name, spec.default) if rules else None)
            self.fixed.append(float(sum(-sc.rules[ri].points for ri in rules
                                        if ri not in checked)))
            self.checked.append(checked)

    def watched(self, bi: int, who: np.ndarray) -> np.ndarray:
        """-elasticity · P(seen) / 10 for these citizens, in float32 as the chance is."""
        return (-self.elasticity[bi] / 10.0) * self.engine.observer.p_seen(bi, who)

    def scale(self, bi, day):
        if self.elasticity[bi] is None:
            return None
        checked = self.checked[bi]
        if not checked:
            fixed = self.fixed[bi]
            return lambda who: self.engine.xp.exp(self.watched(bi, who) * fixed)
        engine, fixed = self.engine, self.fixed[bi]
        behaviour = engine.scenario.behaviours[bi].name

        def factor(who: np.ndarray) -> np.ndarray:
            xp, k = engine.xp, who.shape[0]
            at_stake = xp.full(k, fixed, dtype=xp.float32)
            for ri in checked:
                rule = engine.scenario.rules[ri]
                points = xp.full(k, float(-rule.points), dtype=xp.float32)
                if rule.when is not None:
                    holds = engine.conditions.holds(f"rules[{ri}].when", day, who,
                                                    shift=(behaviour, 1))
                    points = points * xp.astype(holds, xp.float32)
                if rule.cap:
                    room = rule.cap - engine.state.rule_total[rule.name][who]
                    points = xp.minimum(points, xp.astype(xp.maximum(room, 0), xp.float32))
                at_stake = at_stake + points
            return xp.exp(self.watched(bi, who) * at_stake)

        return factor
