"""The soak's lag verdict (bench/verdicts.py): launches' bursts are planned load, a rising lag is not."""

from __future__ import annotations

from bench.verdicts import Lags, Launch, age_verdict, drains_flat, lag_verdict

GROUPS = ("reporting.facts", "outreach.findings", "visits.directory")
LAUNCHES = [300.0, 900.0, 1500.0]  # seconds into a 30-minute load; each request takes 10 s to commit, then the
# relay publishes its events for 20 s while the consumers apply them


def series(baseline, burst_seconds=(60.0, 60.0, 60.0), burst=50_000.0, every=10.0, length=1800.0) -> list[Lags]:
    """Lag per group every `every` s: `baseline(t)` per group, plus after each launch's commit a burst of `burst`
    messages (on the first group) that drains linearly in that launch's `burst_seconds` from its commit."""
    out: list[Lags] = []
    t = every
    while t <= length:
        lags = {g: baseline(t) for g in GROUPS}
        for start, seconds in zip(LAUNCHES, burst_seconds, strict=True):
            since = t - (start + 10)
            if 0 <= since < seconds:
                lags[GROUPS[0]] += burst * (1 - since / seconds)
        out.append((t, lags))
        t += every
    return out


def launches() -> list[Launch]:
    return [(s, s + 10, s + 30) for s in LAUNCHES]


def test_a_flat_lag_with_launch_bursts_is_flat_even_with_a_burst_in_the_last_third():
    verdict = lag_verdict(series(lambda t: 100.0 + (t % 30)), launches(), warm_at=180)
    assert [d.seconds for d in verdict.drains] == [60.0, 60.0, 60.0]
    assert verdict.between.ok and verdict.drains_ok and verdict.ok
    assert all(d.peak >= 50_000 for d in verdict.drains)


def test_a_rising_lag_between_launches_is_missed():
    verdict = lag_verdict(series(lambda t: 100.0 + 0.5 * t), launches(), warm_at=180)  # +30 per minute per group
    assert verdict.drains_ok  # each burst drains, but the lag between them rises
    assert not verdict.between.ok and not verdict.ok
    # Rising faster, the lag is not back to its level before the launch: the bursts do not drain either.
    fast = lag_verdict(series(lambda t: 100.0 + 3.0 * t), launches(), warm_at=180)  # +180 per minute per group
    assert not fast.drains_ok and not fast.ok


def test_drains_that_grow_launch_after_launch_are_missed():
    verdict = lag_verdict(series(lambda t: 100.0, burst_seconds=(60.0, 150.0, 280.0)), launches(), warm_at=180)
    assert [d.seconds for d in verdict.drains] == [60.0, 150.0, 280.0]
    assert verdict.between.ok  # the lag between launches is flat: the drains alone tell it
    assert not verdict.drains_ok and not verdict.ok


def test_a_burst_that_does_not_drain_before_the_next_launch_is_missed():
    verdict = lag_verdict(series(lambda t: 100.0, burst_seconds=(60.0, 800.0, 60.0)), launches(), warm_at=180)
    assert [d.seconds for d in verdict.drains] == [60.0, None, 60.0]
    assert not verdict.ok


def test_drain_times_may_vary_by_the_allowance_and_a_launch_before_the_samples_is_left_out():
    assert drains_flat([60.0, 80.0, 70.0, 90.0])
    assert not drains_flat([60.0, 60.0, 200.0])
    assert not drains_flat([60.0, None])
    verdict = lag_verdict(series(lambda t: 100.0), [(-200.0, -190.0, -180.0), *launches()], warm_at=180)
    assert len(verdict.drains) == 3


def test_a_burst_is_drained_only_after_the_relay_has_published_it():
    # Session 6's last launch: committed, then the consumers idle (lag 0) until the relay published its events
    # 79 s later and the lag jumped to 49,451. Its window lasts until that burst is gone.
    samples: list[Lags] = [(float(t), {"reporting.projections": 300.0}) for t in range(10, 1300, 10)]
    samples += [(1300.0, {"reporting.projections": 0.0}), (1340.0, {"reporting.projections": 0.0})]
    samples += [(1380.0, {"reporting.projections": 49_451.0}), (1410.0, {"reporting.projections": 280.0})]
    [drain] = lag_verdict(samples, [(1285.0, 1298.0, 1377.0)], warm_at=180).drains
    assert drain.back_at == 1410.0 and drain.seconds == 112.0 and drain.peak == 49_451.0


def test_a_launch_just_before_the_end_is_not_judged_but_an_old_undrained_one_is():
    # The last launch committed 40 s before the end, its events not yet all published.
    late = lag_verdict(series(lambda t: 100.0), [*launches(), (1750.0, 1760.0, float("inf"))], warm_at=180)
    assert late.drains[-1].cut and late.drains[-1].seconds is None and late.drains_ok
    stuck = series(lambda t: 100.0, burst_seconds=(60.0, 60.0, 600.0), length=2000.0)  # outlasts the run
    verdict = lag_verdict(stuck, launches(), warm_at=180)
    assert not verdict.drains[-1].cut and not verdict.drains_ok


def ages(baseline, peaks=(50.0, 50.0, 50.0), every=10.0, length=1800.0) -> list[tuple[float, float]]:
    """Outbox age every `every` s: `baseline(t)`, rising to each launch's peak from its request to its publication."""
    out = []
    t = every
    while t <= length:
        age = baseline(t)
        for start, peak in zip(LAUNCHES, peaks, strict=True):
            if start <= t <= start + 30:
                age = max(age, peak * (t - start) / 30)
        out.append((t, age))
        t += every
    return out


def test_the_outbox_age_is_judged_between_launches_and_by_each_launchs_peak():
    windows = lag_verdict(series(lambda t: 100.0), launches(), warm_at=180).drains
    flat = age_verdict(ages(lambda t: 0.2), windows, warm_at=180)
    assert flat.ok and flat.peaks == [50.0, 50.0, 50.0]
    rising = age_verdict(ages(lambda t: 0.2 + t / 300), windows, warm_at=180)  # +0.2 s per minute between launches
    assert not rising.between.ok and not rising.ok
    growing = age_verdict(ages(lambda t: 0.2, peaks=(40.0, 90.0, 160.0)), windows, warm_at=180)
    assert growing.between.ok and not growing.peaks_ok and not growing.ok
