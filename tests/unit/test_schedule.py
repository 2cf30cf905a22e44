"""Scheduled tasks without a server: the next run for every `time_spec` form, the words `anvil-dev tasks`
prints, and the scheduler thread with a stand-in launcher."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from anvil_dev.schedule import ScheduleError, describe, next_run

from helpers import every_minute, set_schedule

UTC = dt.timezone.utc
# Wednesday 15 January 2025, 12:34:56 UTC
NOW = dt.datetime(2025, 1, 15, 12, 34, 56, tzinfo=UTC)


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, tzinfo=UTC)


# ---- next_run: pure -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "after", "expected"),
    [
        # every N minutes falls on fixed points of the clock, strictly after `after`
        ({"n": 10, "every": "minute", "at": {}}, NOW, at(2025, 1, 15, 12, 40)),
        ({"n": 10, "every": "minute", "at": {}}, at(2025, 1, 15, 12, 40), at(2025, 1, 15, 12, 50)),
        ({"n": 1, "every": "minute"}, NOW, at(2025, 1, 15, 12, 35)),
        # every hour at a minute: later this hour, or next hour once it has passed
        ({"n": 1, "every": "hour", "at": {"minute": 45}}, NOW, at(2025, 1, 15, 12, 45)),
        ({"n": 1, "every": "hour", "at": {"minute": 15}}, NOW, at(2025, 1, 15, 13, 15)),
        ({"n": 6, "every": "hour", "at": {"minute": 0}}, NOW, at(2025, 1, 15, 18, 0)),
        # every day at hour and minute
        ({"n": 1, "every": "day", "at": {"hour": 13, "minute": 0}}, NOW, at(2025, 1, 15, 13, 0)),
        ({"n": 1, "every": "day", "at": {"hour": 3, "minute": 30}}, NOW, at(2025, 1, 16, 3, 30)),
        ({"n": 5, "every": "day", "at": {"hour": 3, "minute": 0}}, NOW, at(2025, 1, 17, 3, 0)),
        # every week on a day: 1 is Sunday, 2 Monday ... 7 Saturday (as Anvil's runtime reads `day`)
        ({"n": 1, "every": "week", "at": {"day": 2, "hour": 9, "minute": 0}}, NOW, at(2025, 1, 20, 9, 0)),
        ({"n": 1, "every": "week", "at": {"day": 4, "hour": 13, "minute": 0}}, NOW, at(2025, 1, 15, 13, 0)),
        ({"n": 1, "every": "week", "at": {"day": 4, "hour": 12, "minute": 0}}, NOW, at(2025, 1, 22, 12, 0)),
        ({"n": 1, "every": "week", "at": {"day": 1, "hour": 0, "minute": 0}}, NOW, at(2025, 1, 19, 0, 0)),
        ({"n": 1, "every": "week", "at": {"day": 7, "hour": 23, "minute": 59}}, NOW, at(2025, 1, 18, 23, 59)),
        # every month on a day of the month; day 31 is the last day of a shorter month
        ({"n": 1, "every": "month", "at": {"hour": 10, "minute": 0, "day": 21}}, NOW, at(2025, 1, 21, 10, 0)),
        ({"n": 1, "every": "month", "at": {"hour": 10, "minute": 0, "day": 14}}, NOW, at(2025, 2, 14, 10, 0)),
        ({"n": 1, "every": "month", "at": {"day": 31}}, at(2025, 2, 1), at(2025, 2, 28, 0, 0)),
        ({"n": 1, "every": "month", "at": {"day": 31}}, at(2024, 2, 1), at(2024, 2, 29, 0, 0)),
        ({"n": 3, "every": "month", "at": {"day": 1, "hour": 0, "minute": 0}}, NOW, at(2025, 4, 1, 0, 0)),
        ({"n": 1, "every": "month", "at": {"day": 1}}, at(2025, 12, 5), at(2026, 1, 1, 0, 0)),
    ],
)
def test_next_run_for_each_time_spec_form(spec: dict[str, Any], after: dt.datetime, expected: dt.datetime) -> None:
    assert next_run(spec, after) == expected


def test_consecutive_runs_are_n_periods_apart_and_naive_times_are_utc() -> None:
    spec = {"n": 2, "every": "hour", "at": {"minute": 5}}
    first = next_run(spec, NOW.replace(tzinfo=None))
    assert first == at(2025, 1, 15, 14, 5)
    second = next_run(spec, first)
    assert second - first == dt.timedelta(hours=2)
    weekly = {"n": 2, "every": "week", "at": {"day": 6, "hour": 8, "minute": 0}}
    w1 = next_run(weekly, NOW)
    assert w1.strftime("%A %H:%M") == "Friday 08:00"
    assert next_run(weekly, w1) - w1 == dt.timedelta(weeks=2)


def test_next_run_in_another_time_zone_is_the_same_instant() -> None:
    plus_two = dt.timezone(dt.timedelta(hours=2))
    spec = {"n": 1, "every": "day", "at": {"hour": 13, "minute": 0}}
    assert next_run(spec, NOW.astimezone(plus_two)) == at(2025, 1, 15, 13, 0)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"n": 1, "every": "fortnight"}, "every is 'fortnight'; it must be one of minute, hour, day, week, month"),
        ({"n": 0, "every": "day"}, "n is 0; it must be a whole number of days, 1 or more"),
        ({"n": "2", "every": "day"}, "n is '2'"),
        ({"n": 1, "every": "day", "at": {"hour": 24, "minute": 0}}, "at.hour is 24; it must be an hour, 0 to 23"),
        ({"n": 1, "every": "hour", "at": {"minute": 60}}, "at.minute is 60; it must be a minute, 0 to 59"),
        ({"n": 1, "every": "week", "at": {"day": 0}}, "at.day is 0; it must be a day of the week (1 Sunday to 7"),
        ({"n": 1, "every": "month", "at": {"day": 32}}, "at.day is 32; it must be a day of the month, 1 to 31"),
        ("every day", "time_spec must be a mapping"),
    ],
)
def test_a_time_spec_that_cannot_run_says_which_field_is_wrong(spec: Any, message: str) -> None:
    with pytest.raises(ScheduleError) as e:
        next_run(spec, NOW)
    assert message in str(e.value)


def test_describe_says_the_schedule_in_words() -> None:
    assert describe({"n": 10, "every": "minute", "at": {}}) == "every 10 minutes"
    assert describe({"n": 1, "every": "hour", "at": {"minute": 5}}) == "every hour at minute 5"
    assert describe({"n": 5, "every": "day", "at": {"hour": 3, "minute": 0}}) == "every 5 days at 03:00 UTC"
    assert (
        describe({"n": 1, "every": "week", "at": {"day": 2, "hour": 9, "minute": 30}})
        == "every week on Monday at 09:30 UTC"
    )
    assert (
        describe({"n": 1, "every": "month", "at": {"hour": 10, "minute": 0, "day": 21}})
        == "every month on day 21 at 10:00 UTC"
    )


# ---- the scheduler thread, with a stand-in launcher -------------------------------------------


def wait_until(check: Callable[[], Any], timeout: float = 10) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.1)


def test_the_scheduler_sleeps_between_runs_and_rereads_anvil_yaml(app_dir: Path) -> None:
    from anvil_dev.appdir import AppDir
    from anvil_dev.host.scheduler import Scheduler

    set_schedule(app_dir, [every_minute("first")])
    launched: list[str] = []

    def launch(msg: dict[str, Any], caller: Any) -> dict[str, Any]:
        assert caller.trusted and caller.client_type == "background_task"
        launched.append(msg["args"][0])
        return {"response": {"name": msg["args"][0]}, "objects": []}

    # A minute passes in 0.1 s.
    scheduler = Scheduler(AppDir(app_dir), launch, speedup=600)
    waits = 0
    real_wait = scheduler._wake.wait

    def counting_wait(timeout: float | None = None) -> bool:
        nonlocal waits
        waits += 1
        return real_wait(timeout)

    scheduler._wake.wait = counting_wait  # type: ignore[method-assign]
    scheduler.start()
    try:
        assert wait_until(lambda: launched.count("first") >= 3, timeout=5), launched
        # About one wake-up per run: it sleeps until the next one instead of polling.
        assert waits <= 2 * launched.count("first") + 5, (waits, launched)
        set_schedule(app_dir, [every_minute("second")])
        scheduler.reload()
        assert wait_until(lambda: "second" in launched, timeout=5), launched
        n_first = launched.count("first")
        assert wait_until(lambda: launched.count("second") >= 2, timeout=5)
        assert launched.count("first") == n_first
    finally:
        started = time.monotonic()
        scheduler.stop()
    assert time.monotonic() - started < 1
    assert scheduler._thread is not None and not scheduler._thread.is_alive()
