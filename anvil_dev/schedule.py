"""The schedule of anvil.yaml `scheduled_tasks`, as pure functions: when each job runs next, and in words.

Each entry is Anvil's `{task_name, time_spec: {n, every, at}, job_id}`; `every` is minute, hour, day,
week or month, `n` how many of them, and `at` where in the period (`minute` of the hour; `hour` and
`minute` of the day; `day` of the week, 1 Sunday to 7 Saturday as Anvil's runtime reads it, or of
the month). Times are UTC, as on Anvil.

Runs fall on fixed points (every 10 minutes is :00, :10, :20 ...; every 2 days counts days from
1970-01-01), so the server and `anvil-dev tasks` agree, and a restart of serve does not shift them.
No clock, threads or I/O here: the host's thread is host/scheduler.py.
"""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass
from typing import Any

UTC = dt.timezone.utc
EVERY = ("minute", "hour", "day", "week", "month")
WEEKDAYS = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)
# 1970-01-01 was a Thursday: weeks are counted from Sunday 1970-01-04.
_FIRST_SUNDAY_S = 3 * 86400


class ScheduleError(ValueError):
    """A time_spec that cannot be scheduled; the message says which field and what it may be."""


def next_run(time_spec: Any, after: dt.datetime) -> dt.datetime:
    """The first run of `time_spec` strictly after `after` (an aware datetime; naive means UTC), in UTC."""
    every, n, at = _parse(time_spec)
    if after.tzinfo is None:
        after = after.replace(tzinfo=UTC)
    t = (after - _EPOCH).total_seconds()
    minute, hour = at.get("minute", 0), at.get("hour", 0)
    if every == "month":
        return _next_month(after.astimezone(UTC), n, at.get("day", 1), hour, minute)
    if every == "minute":
        period, offset = 60 * n, 0
    elif every == "hour":
        period, offset = 3600 * n, 60 * minute
    elif every == "day":
        period, offset = 86400 * n, 3600 * hour + 60 * minute
    else:  # week
        weekday = (at.get("day", 1) - 1) % 7  # 0 = Sunday
        period = 7 * 86400 * n
        offset = _FIRST_SUNDAY_S + 86400 * weekday + 3600 * hour + 60 * minute
    k = (t - offset) // period + 1
    return _EPOCH + dt.timedelta(seconds=k * period + offset)


def _next_month(after: dt.datetime, n: int, day: int, hour: int, minute: int) -> dt.datetime:
    index = after.year * 12 + after.month - 1
    index -= index % n
    while True:
        year, month0 = divmod(index, 12)
        # Day 31 in a shorter month is its last day (Anvil's runtime would roll over into the next month).
        last = calendar.monthrange(year, month0 + 1)[1]
        when = dt.datetime(year, month0 + 1, min(day, last), hour, minute, tzinfo=UTC)
        if when > after:
            return when
        index += n


def describe(time_spec: Any) -> str:
    """The schedule in words: "every 10 minutes", "every week on Monday at 09:00 UTC"."""
    every, n, at = _parse(time_spec)
    what = f"every {every}" if n == 1 else f"every {n} {every}s"
    hhmm = f"{at.get('hour', 0):02d}:{at.get('minute', 0):02d} UTC"
    if every == "hour":
        return f"{what} at minute {at.get('minute', 0)}"
    if every == "day":
        return f"{what} at {hhmm}"
    if every == "week":
        return f"{what} on {WEEKDAYS[(at.get('day', 1) - 1) % 7]} at {hhmm}"
    if every == "month":
        return f"{what} on day {at.get('day', 1)} at {hhmm}"
    return what


_RANGES = {"minute": (0, 59), "hour": (0, 23)}


def _parse(time_spec: Any) -> tuple[str, int, dict[str, int]]:
    if not isinstance(time_spec, dict):
        raise ScheduleError("time_spec must be a mapping like {n: 1, every: hour, at: {minute: 0}}")
    every = time_spec.get("every")
    if every not in EVERY:
        raise ScheduleError(f"time_spec every is {every!r}; it must be one of {', '.join(EVERY)}")
    n = time_spec.get("n", 1)
    if n is None:
        n = 1
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ScheduleError(f"time_spec n is {n!r}; it must be a whole number of {every}s, 1 or more")
    raw = time_spec.get("at") or {}
    if not isinstance(raw, dict):
        raise ScheduleError(f"time_spec at is {raw!r}; it must be a mapping like {{hour: 3, minute: 0}}")
    ranges = dict(_RANGES, day=(1, 7) if every == "week" else (1, 31))
    at: dict[str, int] = {}
    for key, value in raw.items():
        if key not in ranges or value is None:
            continue  # keys Anvil's editor writes that do not apply to this period are ignored there too
        lo, hi = ranges[key]
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            meaning = {
                "minute": "a minute",
                "hour": "an hour",
                "day": "a day of the week (1 Sunday to 7 Saturday)" if every == "week" else "a day of the month",
            }[key]
            raise ScheduleError(f"time_spec at.{key} is {value!r}; it must be {meaning}, {lo} to {hi}")
        at[key] = value
    return every, n, at


@dataclass
class Job:
    """One anvil.yaml scheduled task, with its next run (None when its time_spec is invalid)."""

    job_id: str
    task_name: str
    time_spec: Any
    next_run: dt.datetime | None = None
    error: str | None = None
    last_task_id: str | None = None
    reported: str | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        return self.job_id, self.task_name, repr(self.time_spec)


def read_jobs(config: dict[str, Any], now: dt.datetime) -> list[Job]:
    """The jobs in a parsed anvil.yaml, each with its next run after `now` or the error in its entry."""
    entries = config.get("scheduled_tasks") or []
    if not isinstance(entries, list):
        return [
            Job(
                "-",
                "-",
                None,
                error="anvil.yaml scheduled_tasks must be a list of {task_name, time_spec, job_id} entries",
            )
        ]
    jobs = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get("task_name"), str) or not entry["task_name"]:
            jobs.append(Job(f"#{i + 1}", "-", None, error=f"anvil.yaml scheduled_tasks entry {i + 1} has no task_name"))
            continue
        job = Job(str(entry.get("job_id") or f"#{i + 1}"), entry["task_name"], entry.get("time_spec"))
        try:
            job.next_run = next_run(job.time_spec, now)
        except ScheduleError as e:
            job.error = str(e)
        jobs.append(job)
    return jobs


def schedule_lines(config: dict[str, Any], now: dt.datetime) -> list[str]:
    """`anvil-dev tasks`'s table of a parsed anvil.yaml's scheduled tasks and when each runs next after `now`
    (empty when there are none)."""
    jobs = read_jobs(config, now)
    if not jobs:
        return []
    lines = [f"{'SCHEDULED':<10}  {'TASK':<20}  {'SCHEDULE':<38}  NEXT RUN (UTC)"]
    for job in jobs:
        if job.error or job.next_run is None:
            lines.append(f"{job.job_id[:10]:<10}  {job.task_name[:20]:<20}  invalid: {job.error}")
            continue
        lines.append(
            f"{job.job_id[:10]:<10}  {job.task_name[:20]:<20}  {describe(job.time_spec)[:38]:<38}  "
            f"{job.next_run:%Y-%m-%d %H:%M}  (in {_span(job.next_run - now)})"
        )
    return lines


def _span(delta: dt.timedelta) -> str:
    s = max(0, int(delta.total_seconds()))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min"
    if s < 86400:
        return f"{s // 3600} h {s % 3600 // 60} min"
    return f"{s // 86400} d {s % 86400 // 3600} h"
