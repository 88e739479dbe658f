"""Occurrences (ground truth) and what the sensors make of them.

Occurrences are drawn by thinning a Poisson process: citizens are grouped in bands of
similar rate (octaves), each band gets K ~ Poisson(members · bound) candidates drawn
uniformly among its members, and candidate k is a real occurrence when
u_k < rate_i / bound. This costs as much as the day's events, not the population, and
it gives common random numbers for free: the candidates and every draw about them
depend only on the seed, the behaviour and the day, so a policy that makes citizen i
less likely to act (deterrence) keeps a subset of the same occurrences.

The samplers are built and draw in NumPy (the named streams); the draws move into the
backend's arrays, where the rest of the day's work on them is done.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from metricpower.engine.backend import Backend, namespace
from metricpower.engine.members import Members
from metricpower.population import Citizens
from metricpower.scenario.schema import TRAITS, Scenario

#: Behaviours driven by income are drawn at HEADROOM times their base rates, so that
#: income feedback can raise a citizen's rate up to that factor and runs with and
#: without responses still share every draw.
HEADROOM = 2.0


def trait_values(citizens: Citizens, trait: str, index=slice(None)) -> np.ndarray:
    """A trait of these citizens as a float32 array on a comparable scale (income as log
    income)."""
    if trait == "income":
        return np.log(citizens.income[index], dtype=np.float32)
    return getattr(citizens, trait)[index].astype(np.float32)


class Given:
    """Rates given as an array (a test's, or a model's without a recipe)."""

    def __init__(self, rate: np.ndarray):
        self.rate = rate.astype(np.float32, copy=False)

    def __len__(self) -> int:
        return len(self.rate)

    def at(self, index) -> np.ndarray:
        return self.rate[index]


class Rates:
    """Per-citizen daily rates (float32), log-linear in the drivers, with mean `mean_rate`
    over those who can act at all (`requires`).

    Kept as the recipe, not as an array: the samplers read a rate only for the day's
    candidates, and working it out for them (the same float32 operations, element by
    element) gives the numbers the whole array would hold, for 4 bytes less per citizen
    and behaviour."""

    def __init__(self, citizens: Citizens, mean_rate: float, drivers: dict[str, float],
                 requires: str | None):
        assert set(drivers) <= set(TRAITS)
        self.citizens, self.drivers, self.requires = citizens, drivers, requires
        self.shift, self.scale = self._log(slice(None)).max(initial=0.0), np.float32(1)
        m = self.at(slice(None))
        count = len(m) if requires is None else int(np.count_nonzero(self._eligible()))
        mean = m.sum(dtype=np.float64) / count if count else 1.0
        self.scale = np.float32(mean_rate / mean)

    def __len__(self) -> int:
        return len(self.citizens)

    def _eligible(self, index=slice(None)) -> np.ndarray:
        return getattr(self.citizens, self.requires)[index]

    def _log(self, index) -> np.ndarray:
        k = len(self.citizens) if isinstance(index, slice) else index.shape[0]
        log_m = np.zeros(k, dtype=np.float32)
        for trait, coef in self.drivers.items():
            log_m += np.float32(coef) * trait_values(self.citizens, trait, index)
        return log_m

    def at(self, index) -> np.ndarray:
        """The rates of these citizens (an index array, or everyone: `slice(None)`)."""
        m = np.exp(self._log(index) - self.shift)
        if self.requires is not None:
            m[~self._eligible(index)] = 0
        return m * self.scale


class Sampler:
    """Poisson draws at per-citizen daily rates, by thinning within bands of rate half an
    octave wide, so that at least 1 / (√2 · headroom) of the candidates are accepted.

    Every citizen is drawn as a candidate at its band's bound: the day's candidates are
    K ~ Poisson(Σ bands' members · bound), each a uniform point on a line where each band
    holds its members · bound, so one uniform says both the band and the member. A day's
    draw is a few whole-array calls, however many bands there are."""

    #: Bands, half an octave each (rates below the last band's floor share the last).
    BANDS = 48

    def __init__(self, rates: Rates | Given | np.ndarray, backend: Backend,
                 headroom: float = 1.0):
        #: How a citizen's rate is worked out; the whole array only while the bands are.
        self.rates = Given(rates) if isinstance(rates, np.ndarray) else rates
        rate = self.rates.at(slice(None))
        top = float(rate.max(initial=0.0))
        #: The citizens grouped by band (None: everyone, in one band); each band's first
        #: and past-the-last place in `order`, its bound, and where it ends on the line.
        self.order = None
        self.start = self.end = np.zeros(0, np.int64)
        self.bound = np.zeros(0, np.float32)
        if top > 0 and float(rate.min()) == top:  # everyone alike: one band, no list
            self.start, self.end = np.zeros(1, np.int64), np.full(1, len(rate), np.int64)
            self.bound = np.full(1, top * headroom, np.float32)
        elif top > 0:
            band, self.order = backend.bands(rate, top, self.BANDS)
            ends = np.cumsum(np.bincount(band, minlength=self.BANDS + 1))[:self.BANDS]
            starts = np.r_[0, ends[:-1]]
            live = ends > starts
            self.start, self.end = starts[live].astype(np.int64), ends[live].astype(np.int64)
            j = np.flatnonzero(live)
            self.bound = (np.float32(top) / 2 ** (j / 2) * headroom).astype(np.float32)
        size = self.end - self.start
        self.line = np.cumsum(size * self.bound.astype(np.float64))
        self.total = float(self.line[-1]) if len(self.line) else 0.0
        #: Where each band begins on the line, its bound in float64, its last place.
        self.before = self.line - size * self.bound
        self.bound64, self.last = self.bound.astype(np.float64), self.end - 1
        # Rounding could put a point at the line's very end: it belongs to the last band.
        if len(self.line):
            self.line[-1] = np.inf



class Samplers:
    """The samplers of one behaviour (or service, or camera error) for each member of an
    engine, drawn together: each member's numbers come from its own generator, in the
    order a draw on its sampler alone makes them (K ~ Poisson, K points, then the
    uniforms), and the rest is done once for all members, on their bands laid end to
    end (member m's citizens numbered from `starts[m]`)."""

    def __init__(self, samplers: list[Sampler], starts: list[int]):
        # Only each member's line and rates are kept of its sampler: the band order is
        # held once, here (one member's as it is, several joined), since it is the
        # engine's largest array after the network.
        self.lines = [(s.total, s.line) for s in samplers]
        self.rates = [s.rates for s in samplers]
        self.starts = list(starts)
        bands = np.cumsum([0] + [len(s.line) for s in samplers])
        places = np.cumsum([0] + [len(s.rates) for s in samplers])
        #: Where each member's bands begin among all members' bands.
        self.first_band = bands[:-1].tolist()

        def joined(name: str, shift=None):
            parts = [getattr(s, name) for s in samplers]
            if shift is not None:
                parts = [p + k for p, k in zip(parts, shift, strict=True)]
            return parts[0] if len(parts) == 1 else np.concatenate(parts)

        self.before, self.bound64, self.bound = (joined(k) for k in ("before", "bound64",
                                                                     "bound"))
        # Places in the joined order of citizens, which holds engine citizen numbers.
        self.start = joined("start", places[:-1])
        self.last = joined("last", places[:-1])
        n = int(starts[-1]) + len(samplers[-1].rates)
        index = np.int32 if n < 2**31 else np.int64
        if len(samplers) == 1 and starts[0] == 0:
            # None: everyone in one band, in citizen order.
            self.order = samplers[0].order
        else:
            self.order = np.concatenate([
                (np.arange(len(s.rates), dtype=index) if s.order is None
                 else s.order.astype(index)) + index(start)
                for s, start in zip(samplers, starts, strict=True)])

    def draw(self, rngs: list[np.random.Generator], extra: int):
        """One day's candidates of every member, member after member: citizens (engine
        numbers), the base chance each is real (rate / bound), `1 + extra` uniforms each
        (the first decides acceptance), in NumPy; and how many each member has."""
        points, bands, uniforms = [], [], []
        for (total, line), rng, first in zip(self.lines, rngs, self.first_band, strict=True):
            point = rng.random(rng.poisson(total)) * total
            points.append(point)
            bands.append(line.searchsorted(point, side="right") + first)
            uniforms.append(rng.random((1 + extra, len(point)), dtype=np.float32))
        counts = np.array([len(p) for p in points], np.int64)
        if len(points) == 1:
            point, band, u = points[0], bands[0], uniforms[0]
        else:
            point, band = np.concatenate(points), np.concatenate(bands)
            u = np.concatenate(uniforms, axis=1)
        offset = ((point - self.before[band]) / self.bound64[band]).astype(np.int64)
        place = np.minimum(self.start[band] + offset, self.last[band])
        cand = place if self.order is None else self.order[place].astype(np.int64)
        return cand, self._rate(cand, counts) / self.bound[band], u, counts

    def _rate(self, cand: np.ndarray, counts: np.ndarray) -> np.ndarray:
        """The rates of the candidates, each member's (they come member after member)
        worked out on its own population."""
        if len(self.rates) == 1:
            return self.rates[0].at(cand - self.starts[0])
        ends = np.cumsum(counts)
        return np.concatenate([r.at(cand[e - k:e] - start) for r, start, e, k in zip(
            self.rates, self.starts, ends, counts, strict=True)])


class FalseMatchRates:
    """One camera's daily rate of charging each citizen with one behaviour for someone
    else's act: the camera's rate times the group factor and coverage where the citizen
    lives, for those able to do it, times the behaviour's share. A recipe, as `Rates`."""

    def __init__(self, citizens: Citizens, rate: float, mult: np.ndarray, coverage,
                 requires: str | None, share: float):
        self.citizens, self.rate, self.mult, self.coverage = citizens, rate, mult, coverage
        self.requires, self.share = requires, share

    def __len__(self) -> int:
        return len(self.citizens)

    def at(self, index) -> np.ndarray:
        c = self.citizens
        rate = self.rate * self.mult[c.group[index]] * np.where(c.urban[index],
                                                               *self.coverage)
        able = (np.ones(rate.shape[0], bool) if self.requires is None
                else getattr(c, self.requires)[index])
        return (rate * able * self.share).astype(np.float32)


def cameras_that_err(scenario: Scenario) -> list[tuple[int, list[int]]]:
    """Each camera that can charge the wrong citizen (sensor index), with the public
    behaviours it watches (behaviour indices)."""
    out = []
    for si, s in enumerate(scenario.sensors):
        public = [bi for bi, b in enumerate(scenario.behaviours)
                  if b.public and s.name in b.sensors]
        if s.kind == "camera" and s.false_match_rate > 0 and public:
            out.append((si, public))
    return out


def false_match_rates(scenario: Scenario, citizens: Citizens):
    """For each camera that can err and each public behaviour it watches: (sensor index,
    behaviour index, per-citizen daily rate of being charged with that behaviour for
    someone else's act). Only those who could have been seen doing it are charged (a
    dog charge falls on a dog owner): the camera's false matches are shared among its
    behaviours by how many acts of each there are to mistake (rate times the share who
    can act), and each behaviour's among those who can do it, so the camera's mean rate
    per citizen stays `false_match_rate` times the group factor and coverage."""
    out = []
    for si, public in cameras_that_err(scenario):
        s = scenario.sensors[si]
        mult = np.array([s.false_match_by_group.get(g.name, 1.0)
                         for g in scenario.population.groups])
        requires = [scenario.behaviours[bi].requires for bi in public]
        share_able = np.array([(1.0 if r is None else getattr(citizens, r).mean())
                               if len(citizens) else 0.0 for r in requires])
        volume = np.array([scenario.behaviours[bi].rate for bi in public]) * share_able
        if volume.sum() == 0:
            continue
        for bi, r, sa, v in zip(public, requires, share_able, volume, strict=True):
            if v > 0:
                out.append((si, bi, FalseMatchRates(
                    citizens, s.false_match_rate, mult,
                    (s.coverage.urban, s.coverage.rural), r, v / volume.sum() / sa)))
    return out


@dataclass
class Events:
    """One day's observed events for one behaviour."""

    citizen: np.ndarray        # int64
    sensor: np.ndarray         # int16, index into scenario.sensors
    benign: np.ndarray         # bool: the hidden context was benign
    misattributed: np.ndarray  # bool: a false match charged someone who did nothing


class Observer:
    """Draws a day's occurrences and observations for every behaviour: each member's from
    its own streams, on samplers of its own population (rates are relative to its own
    mean), its citizens' draws in the order its own run makes them."""

    def __init__(self, scenario: Scenario, members: Members, backend: Backend):
        self.members, self.backend = members, backend
        self.n = int(members.start[-1])
        self.behaviours = scenario.behaviours
        sensor_index = {s.name: i for i, s in enumerate(scenario.sensors)}
        self.headroom = [HEADROOM if "income" in b.drivers else 1.0 for b in self.behaviours]
        starts = members.start[:-1].tolist()
        #: Per behaviour, its samplers (one per member).
        self.sampler = [Samplers([Sampler(Rates(c, b.rate, b.drivers, b.requires), backend, h)
                                  for c in members.populations], starts)
                        for b, h in zip(self.behaviours, self.headroom, strict=True)]
        # The cameras' false matches, per (sensor, behaviour) any member has (a member
        # whose own run has none draws nothing).
        by_member = [{(si, bi): rate for si, bi, rate in false_match_rates(scenario, c)}
                     for c in members.populations]
        self.false_match = [
            (si, bi, f"falsematch:{scenario.sensors[si].name}:{self.behaviours[bi].name}",
             Samplers([Sampler(mine.get((si, bi), Given(np.zeros(len(c), np.float32))), backend)
                       for mine, c in zip(by_member, members.populations, strict=True)],
                      starts))
            # In the order of each member's own list: by sensor, then behaviour.
            for si, bi in sorted({k for mine in by_member for k in mine})]
        self.sensor_ids = [[sensor_index[s] for s in b.sensors] for b in self.behaviours]
        # Chance that sensor s sees an act, where each citizen lives: worked out for the
        # citizens at hand from where they live, rather than kept per citizen and sensor.
        self.urban = backend.asarray(np.concatenate([c.urban for c in members.populations]))
        self.xp = xp = backend.namespace(backend.asarray(np.zeros(0)))
        self.coverage = [(xp.asarray(s.coverage.urban, dtype=xp.float64),
                          xp.asarray(s.coverage.rural, dtype=xp.float64),
                          xp.asarray(s.detection, dtype=xp.float32))
                         for s in scenario.sensors]

    def occurrences(self, day: int, bi: int,
                    propensity: Callable[[np.ndarray], np.ndarray] | None = None):
        """Today's occurrences of behaviour `bi`: citizens, benign flags, and the uniforms
        that decide which sensors see them. `propensity(citizens)` (0..headroom) scales
        the rate (deterrence, income); the draws are the same whatever it is. `would`
        marks the occurrences at the unscaled rate: those not kept now were chilled.

        Only candidates that some propensity could make real get the further uniforms;
        which those are does not depend on the propensity, so the draws stay shared."""
        b = self.behaviours[bi]
        rngs = self.members.rngs(f"occur:{b.name}", day)
        cand, p, u, counts = self.sampler[bi].draw(rngs, 0)
        # The headroom is a power of two: a float32 product, exactly as in float32.
        possible = u[0, :] < p * self.headroom[bi]
        # How many candidates of each member are possible (its candidates are together).
        running, ends = np.r_[0, np.cumsum(possible)], np.cumsum(counts)
        kept = running[ends] - running[ends - counts]
        sensors = 1 + len(self.sensor_ids[bi])
        extra = [rng.random((sensors, int(k)), dtype=np.float32) for rng, k in zip(
            rngs, kept, strict=True)]
        to = self.backend.asarray
        cand, p, u0 = to(cand[possible]), to(p[possible]), to(u[0, :][possible])
        extra = to(extra[0] if len(extra) == 1 else np.concatenate(extra, axis=1))
        would = u0 < p
        keep = would if propensity is None else u0 < p * propensity(cand)
        return cand, keep, would, extra[0, :] < b.benign_share, extra[1:, :]

    def seen(self, si: int, citizen) -> np.ndarray:
        """Chance that sensor `si` sees an act of each of these citizens (float32)."""
        xp = self.xp
        urban, rural, detection = self.coverage[si]
        return xp.astype(xp.where(self.urban[citizen], urban, rural), xp.float32) * detection

    def p_seen(self, bi: int, citizen) -> np.ndarray:
        """Chance that at least one of the behaviour's sensors sees an act of each of
        these citizens."""
        unseen = self.xp.ones(citizen.shape[0], dtype=self.xp.float32)
        for si in self.sensor_ids[bi]:
            unseen *= 1 - self.seen(si, citizen)
        return 1 - unseen

    def observe(self, bi: int, citizen: np.ndarray, benign: np.ndarray,
                u_sensor: np.ndarray) -> Events:
        """Which occurrences a sensor sees; the first sensor that sees one is its evidence."""
        xp = self.xp
        sensor = xp.full(citizen.shape, -1, dtype=xp.int16)
        for k, si in enumerate(self.sensor_ids[bi]):
            seen = (sensor < 0) & (u_sensor[k, :] < self.seen(si, citizen))
            sensor[seen] = si
        hit = sensor >= 0
        return Events(citizen[hit], sensor[hit], benign[hit],
                      xp.zeros(int(xp.count_nonzero(hit)), dtype=xp.bool))

    def false_matches(self, day: int) -> dict[int, Events]:
        """Cameras charging citizens who did nothing, by the behaviour they are charged
        with (among those who could have done it when the run began: the occur stage
        drops those who no longer can); member after member."""
        hits: dict[int, list[np.ndarray]] = {}
        sensor: dict[int, list[np.ndarray]] = {}
        for si, bi, stream, samplers in self.false_match:
            cand, p, u, _ = samplers.draw(self.members.rngs(stream, day), 0)
            hit = cand[u[0, :] < p]
            hits.setdefault(bi, []).append(hit)
            sensor.setdefault(bi, []).append(np.full(len(hit), si, np.int16))
        xp, to = self.xp, self.backend.asarray
        events = {}
        for bi, parts in hits.items():
            hit = to(np.concatenate(parts))
            k = hit.shape[0]
            events[bi] = Events(hit, to(np.concatenate(sensor[bi])),
                                xp.zeros(k, dtype=xp.bool), xp.ones(k, dtype=xp.bool))
        return events


def concat(events: list[Events]) -> Events:
    if len(events) == 1:
        return events[0]
    xp = namespace(events[0].citizen)
    return Events(*(xp.concat([getattr(e, f) for e in events])
                    for f in ("citizen", "sensor", "benign", "misattributed")))
