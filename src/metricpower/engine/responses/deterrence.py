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
        # -elasticity · P(seen) / 10 per citizen. `fixed`: the points of the rules that
        # always apply; `checked`: the rules with a condition or a cap, worked out per act;
        # `factor`: the whole factor per citizen where no rule needs checking.
        self.watched: list[np.ndarray | None] = []
        self.fixed: list[np.float32] = []
        self.checked: list[list[int]] = []
        self.factor: list[np.ndarray | None] = []
        for bi, b in enumerate(sc.behaviours):
            rules = [ri for ri, r in enumerate(sc.rules)
                     if r.kind == "event" and r.behaviour == b.name and r.is_penalty]
            checked = [ri for ri in rules if sc.rules[ri].when is not None or sc.rules[ri].cap]
            fixed = np.float32(sum(-sc.rules[ri].points for ri in rules if ri not in checked))
            watched = None
            if rules:
                e = spec.elasticity.get(b.name, spec.default)
                watched = (np.float32(-e / 10.0) * engine.observer.p_seen(bi)
                           ).astype(np.float32)
            self.watched.append(watched)
            self.fixed.append(fixed)
            self.checked.append(checked)
            self.factor.append(np.exp(watched * fixed) if rules and not checked else None)

    def scale(self, bi, day):
        watched, checked = self.watched[bi], self.checked[bi]
        if watched is None:
            return None
        if not checked:
            return self.factor[bi].__getitem__
        engine, fixed = self.engine, self.fixed[bi]
        behaviour = engine.scenario.behaviours[bi].name

        def factor(who: np.ndarray) -> np.ndarray:
            at_stake = np.full(len(who), fixed, np.float32)
            for ri in checked:
                rule = engine.scenario.rules[ri]
                points = np.full(len(who), -rule.points, np.float32)
                if rule.when is not None:
                    holds = engine.conditions.holds(f"rules[{ri}].when", day, who,
                                                    shift=(behaviour, 1))
                    points *= holds
                if rule.cap:
                    room = rule.cap - engine.state.rule_total[rule.name][who]
                    points = np.minimum(points, np.maximum(room, 0))
                at_stake += points
            return np.exp(watched[who] * at_stake)

        return factor
