"""The soak's verdicts as pure functions of its time series (tests/unit/test_soak_verdicts.py pins them).

A soak launches campaigns on purpose: each launch publishes one event per family at once, a burst of consumer lag
that is planned load, not drift. So the lag verdict compares like with like:
* the lag between launches (samples outside every launch's window, from the launch request to the first sample,
  once the relay has published the launch's events, where every consumer group is back to its level before the
  launch): flat over the run by `trend` (first against last third, least-squares slope);
* each launch's drain time (from its commit to that sample): must not grow from the first launch to the last.
A baseline that rises between launches, a burst that does not drain before the next launch, or drains that take
longer launch after launch are all MISSED.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

# A group is back to its level before a launch once its lag is at most that level (the median of its last samples
# before the launch) plus this many messages: a consumer under steady load never sits at exactly one value.
GROUP_ALLOWANCE = 250
# Drain times may vary by this many seconds (the samples' spacing, the machine's noise) without counting as growth.
DRAIN_ALLOWANCE = 30.0
# A launch committed less than this many seconds before the last sample, and not drained by then, is cut off by the
# end of the run: printed, not judged. Later than that, not drained is not drained.
CUT_OFF = 300.0

Point = tuple[float, float]
Lags = tuple[float, Mapping[str, float]]  # (seconds into the load, lag per consumer group)
Launch = tuple[float, float, float]  # seconds into the load: request sent, committed, its last event published


def pct(values: Sequence[float], q: float) -> float:
    """The q-quantile (nearest rank)."""
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q * len(s)) - 1))] if s else float("nan")


def slope_total(points: Sequence[Point]) -> float:
    """Least-squares slope × time span: how much the series rose over the run by its trend."""
    if len(points) < 3:
        return 0.0
    n = len(points)
    mx, my = sum(x for x, _ in points) / n, sum(y for _, y in points) / n
    var = sum((x - mx) ** 2 for x, _ in points)
    if var == 0:
        return 0.0
    slope = sum((x - mx) * (y - my) for x, y in points) / var
    return slope * (points[-1][0] - points[0][0])


@dataclass
class Trend:
    """A series after the warm-up in numbers: its thirds, its least-squares trend, and whether it is flat."""

    first: tuple[float, float]  # (median, max) of the first third of the samples
    last: tuple[float, float]  # (median, max) of the last third
    rise: float  # least-squares slope × the run's length
    per_minute: float  # the slope
    mean: float
    peak: float
    ok: bool

    def describe(self, unit: str, fmt: str) -> str:
        def v(x: float) -> str:
            return format(x, fmt) + unit

        return (
            f"first third median {v(self.first[0])} max {v(self.first[1])}, last third median {v(self.last[0])} "
            f"max {v(self.last[1])}; mean {v(self.mean)}, max {v(self.peak)}; slope {self.per_minute:+{fmt}}{unit}/min "
            f"(trend over the run {v(self.rise)}) → flat: {'ok' if self.ok else 'MISSED'}"
        )


def trend(points: Sequence[Point], allowance: float) -> Trend:
    """Flat = the trend rose less than half the mean plus `allowance` over the run, and the last third's median is
    at most 1.5 × the first third's plus `allowance` (medians: one spike in a third does not decide it)."""
    values = [y for _, y in points]
    third = max(1, len(values) // 3)
    head, tail = values[:third], values[-third:]
    first = (pct(head, 0.5) if head else 0.0, max(head, default=0.0))
    last = (pct(tail, 0.5) if tail else 0.0, max(tail, default=0.0))
    mean = sum(values) / len(values) if values else 0.0
    rise = slope_total(points)
    span = points[-1][0] - points[0][0] if len(points) > 1 else 0.0
    ok = rise <= 0.5 * mean + allowance and last[0] <= 1.5 * first[0] + allowance
    return Trend(first, last, rise, 60 * rise / span if span else 0.0, mean, max(values, default=0.0), ok)


@dataclass
class Drain:
    """One launch's burst: when it began (the request), was committed and published, each group's level before it,
    the sample at which every group was back to it (None: not before the next launch or the end), and its peak
    total lag."""

    started: float
    committed: float
    published: float
    before: dict[str, float]
    back_at: float | None
    peak: float
    cut: bool = False  # not drained when the samples ended, less than CUT_OFF after its commit

    @property
    def seconds(self) -> float | None:
        """From the commit to the first sample with every group back to its level before the launch."""
        return None if self.back_at is None else self.back_at - self.committed


def drains(samples: Sequence[Lags], launches: Sequence[Launch], allowance: float = GROUP_ALLOWANCE) -> list[Drain]:
    """Each launch with a sample before it: its drain. A launch's window ends at the first sample after its commit
    and its last event's publication (before that the burst may not have reached the consumers yet) where every
    group's lag is at most its level before the launch (median of its last five samples before the request) +
    `allowance`, or is open (not drained) if the next launch or the end of the samples comes first."""
    out = []
    for i, (started, committed, published) in enumerate(launches):
        earlier = [lags for t, lags in samples if t < started][-5:]
        if not earlier:
            continue  # launched before the load: no level to come back to
        groups = sorted({g for lags in earlier for g in lags})
        before = {g: statistics.median(lags.get(g, 0.0) for lags in earlier) for g in groups}
        until = launches[i + 1][0] if i + 1 < len(launches) else float("inf")
        during = [(t, lags) for t, lags in samples if started <= t < until]
        back = next(
            (
                t
                for t, lags in during
                if t > committed
                and t >= published
                and all(v <= before.get(g, 0.0) + allowance for g, v in lags.items())
            ),
            None,
        )
        peak = max((sum(lags.values()) for t, lags in during if back is None or t <= back), default=0.0)
        cut = back is None and until == float("inf") and samples[-1][0] < committed + CUT_OFF
        out.append(Drain(started, committed, published, before, back, peak, cut))
    return out


def between_launches(samples: Sequence[Lags], windows: Sequence[Drain]) -> list[Point]:
    """Total lag of the samples outside every launch's window (an undrained window lasts to the next launch)."""
    starts = [d.started for d in windows]

    def inside(t: float) -> bool:
        for i, d in enumerate(windows):
            end = d.back_at if d.back_at is not None else (starts[i + 1] if i + 1 < len(starts) else float("inf"))
            if d.started <= t < end:
                return True
        return False

    return [(t, float(sum(lags.values()))) for t, lags in samples if not inside(t)]


def drains_flat(seconds: Sequence[float | None], allowance: float = DRAIN_ALLOWANCE) -> bool:
    """Every launch drained, and the drains do not grow: the last at most 1.5 × the first + `allowance`, and their
    least-squares trend from the first launch to the last less than half their mean + `allowance`."""
    if any(s is None for s in seconds):
        return False
    values = [float(s) for s in seconds if s is not None]
    if len(values) < 2:
        return True
    rise = slope_total([(float(i), v) for i, v in enumerate(values)])
    return values[-1] <= 1.5 * values[0] + allowance and rise <= 0.5 * statistics.mean(values) + allowance


@dataclass
class LagVerdict:
    between: Trend  # the lag between launches
    drains: list[Drain]
    drains_ok: bool

    @property
    def ok(self) -> bool:
        return self.between.ok and self.drains_ok


def lag_verdict(
    samples: Sequence[Lags], launches: Sequence[Launch], warm_at: float, allowance: float = 1000
) -> LagVerdict:
    """Lag flat: between launches after the warm-up (`trend` with `allowance` messages), and each launch's drain
    time not growing from the first launch in the load to the last."""
    windows = drains(samples, launches)
    between = [(t, v) for t, v in between_launches(samples, windows) if t >= warm_at]
    return LagVerdict(trend(between, allowance), windows, drains_flat([d.seconds for d in windows if not d.cut]))


@dataclass
class AgeVerdict:
    between: Trend  # the outbox age between launches
    peaks: list[float]  # each judged launch's peak age (from its request to the end of its window)
    peaks_ok: bool

    @property
    def ok(self) -> bool:
        return self.between.ok and self.peaks_ok


def age_verdict(ages: Sequence[Point], windows: Sequence[Drain], warm_at: float, allowance: float = 2.0) -> AgeVerdict:
    """Outbox age flat, like with like: between launches (outside the lag verdict's windows, after the warm-up) by
    `trend` with `allowance` seconds, and each launch's peak age (its transaction plus the relay's share) not growing
    from launch to launch (`drains_flat`; a launch cut off by the end is left out, one not drained is MISSED)."""
    lags = [(t, {"age": a}) for t, a in ages]
    outside = {t for t, _ in between_launches(lags, windows)}
    between = [(t, a) for t, a in ages if t in outside and t >= warm_at]
    peaks: list[float | None] = []
    for i, d in enumerate(windows):
        if d.cut:
            continue
        end = d.back_at if d.back_at is not None else (windows[i + 1].started if i + 1 < len(windows) else None)
        peaks.append(
            None if d.back_at is None else max((a for t, a in ages if d.started <= t <= (end or t)), default=0.0)
        )
    return AgeVerdict(trend(between, allowance), [p for p in peaks if p is not None], drains_flat(peaks))
