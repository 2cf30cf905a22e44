"""Scheduled tasks: anvil.yaml `scheduled_tasks` launch their background task on schedule while serve runs.

Each entry is Anvil's `{task_name, time_spec: {n, every, at}, job_id}`; `every` is minute, hour, day,
week or month, `n` how many of them, and `at` where in the period (`minute` of the hour; `hour` and
`minute` of the day; `day` of the week, 1 Sunday to 7 Saturday as Anvil's runtime reads it, or of
the month). Times are UTC, as on Anvil.

`next_run` is pure: runs fall on fixed points (every 10 minutes is :00, :10, :20 ...; every 2 days
counts days from 1970-01-01), so the server and `anvil-dev tasks` agree, and a restart of serve
does not shift them. A run missed while serve was stopped or busy is skipped, not caught up.

A host thread (`Scheduler`) sleeps until the next run is due, on an Event that a reload of
anvil.yaml or shutdown sets. It launches through the same native handler as
`anvil.server.launch_background_task`, and skips a job whose previous run is still running, as
Anvil does. `ANVIL_DEV_SCHEDULE_SPEEDUP=60` makes a minute pass in a second (for tests).
"""

from __future__ import annotations

import calendar
import datetime as dt
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import click

from anvil_dev.appdir import AppDir, AppDirError
from anvil_dev.calls import Caller, Message

UTC = dt.timezone.utc
EVERY = ("minute", "hour", "day", "week", "month")
WEEKDAYS = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)
# 1970-01-01 was a Thursday: weeks are counted from Sunday 1970-01-04.
_FIRST_SUNDAY_S = 3 * 86400


class ScheduleError(ValueError):
    """A time_spec that cannot be scheduled; the message says which field and what it may be."""


# ---- the schedule, as pure functions ----------------------------------------------------------


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
            meaning = {"minute": "a minute", "hour": "an hour",
                       "day": "a day of the week (1 Sunday to 7 Saturday)" if every == "week"
                       else "a day of the month"}[key]
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
        return [Job("-", "-", None, error="anvil.yaml scheduled_tasks must be a list of "
                                          "{task_name, time_spec, job_id} entries")]
    jobs = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get("task_name"), str) or not entry["task_name"]:
            jobs.append(Job(f"#{i + 1}", "-", None, error=f"anvil.yaml scheduled_tasks entry {i + 1} has no "
                                                           "task_name"))
            continue
        job = Job(str(entry.get("job_id") or f"#{i + 1}"), entry["task_name"], entry.get("time_spec"))
        try:
            job.next_run = next_run(job.time_spec, now)
        except ScheduleError as e:
            job.error = str(e)
        jobs.append(job)
    return jobs


def schedule_lines(app: AppDir, now: dt.datetime | None = None) -> list[str]:
    """`anvil-dev tasks`'s table of the scheduled tasks and when each runs next (empty when there are none)."""
    now = now or dt.datetime.now(UTC)
    jobs = read_jobs(app.config, now)
    if not jobs:
        return []
    lines = [f"{'SCHEDULED':<10}  {'TASK':<20}  {'SCHEDULE':<38}  NEXT RUN (UTC)"]
    for job in jobs:
        if job.error or job.next_run is None:
            lines.append(f"{job.job_id[:10]:<10}  {job.task_name[:20]:<20}  invalid: {job.error}")
            continue
        lines.append(f"{job.job_id[:10]:<10}  {job.task_name[:20]:<20}  {describe(job.time_spec)[:38]:<38}  "
                     f"{job.next_run:%Y-%m-%d %H:%M}  (in {_span(job.next_run - now)})")
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


# ---- the scheduler thread in the host ---------------------------------------------------------


class _Clock:
    """Wall-clock time in UTC, running `speedup` times faster than real time from when it was made."""

    def __init__(self, speedup: float = 1.0) -> None:
        self.speedup = speedup
        self._t0 = time.time()
        self._m0 = time.monotonic()

    def now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self._t0 + (time.monotonic() - self._m0) * self.speedup, UTC)

    def seconds_until(self, when: dt.datetime) -> float:
        return max(0.0, (when - self.now()).total_seconds() / self.speedup)


class Scheduler:
    """Launches anvil.yaml's scheduled tasks on time, in a thread of the host.

    `launch(message, caller)` is the host's launch handler (the one `launch_background_task` reaches);
    `registered(name)` says whether a background task of that name exists (None: cannot tell).
    """

    def __init__(self, app: AppDir, launch: Callable[[Message, Caller], Message],
                 registered: Callable[[str], bool | None] | None = None, speedup: float = 1.0) -> None:
        self.app = app
        self.launch = launch
        self.registered = registered
        self.clock = _Clock(speedup)
        self.jobs: list[Job] = []
        self._wake = threading.Event()
        self._reload = True
        self._stopping = False
        self._loaded = False
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="anvil-dev-scheduler", daemon=True)
        self._thread.start()

    def reload(self) -> None:
        """anvil.yaml changed: re-read the schedule (jobs whose entry did not change keep their next run)."""
        self._reload = True
        self._wake.set()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(5)

    def _run(self) -> None:
        while not self._stopping:
            if self._reload:
                self._reload = False
                self._load()
            # A wait may end a hair early; a run that is a few real milliseconds off counts as due.
            now = self.clock.now() + dt.timedelta(seconds=0.005 * self.clock.speedup)
            for job in self.jobs:
                if job.next_run is not None and job.next_run <= now and not self._stopping:
                    self._fire(job)
            due = [job.next_run for job in self.jobs if job.next_run is not None]
            # Sleep until the next run; a reload or shutdown sets the Event and wakes us at once.
            self._wake.wait(self.clock.seconds_until(min(due)) if due else None)
            self._wake.clear()

    def _load(self) -> None:
        try:
            config = self.app.read_config()
        except AppDirError as e:
            click.secho(f"scheduled tasks: {e} (keeping the previous schedule)", fg="red", err=True)
            return
        old = {job.key: job for job in self.jobs}
        first, self._loaded = not self._loaded, True
        if first and self.clock.speedup != 1 and config.get("scheduled_tasks"):
            click.echo(f"scheduled tasks: time runs {self.clock.speedup:g}x faster (ANVIL_DEV_SCHEDULE_SPEEDUP)",
                       err=True)
        jobs = read_jobs(config, self.clock.now())
        for i, job in enumerate(jobs):
            kept = old.get(job.key)
            if kept is not None:
                jobs[i] = kept
        changed = [job for job in jobs if job.key not in old]
        self.jobs = jobs
        if not first and {j.key for j in jobs} != set(old):
            click.echo(f"scheduled tasks reloaded from anvil.yaml: {len(jobs)}", err=True)
        for job in changed:
            if job.error:
                click.secho(f"scheduled task {job.task_name!r} (job {job.job_id}) will not run: {job.error}",
                            fg="red", err=True)
            else:
                assert job.next_run is not None
                click.echo(f"scheduled task {job.task_name}: {describe(job.time_spec)}, next run "
                           f"{job.next_run:%Y-%m-%d %H:%M:%S} UTC", err=True)
        for job in changed:
            if not job.error and self._registered(job.task_name) is False:
                self._report(job, _not_registered(job))

    def _registered(self, name: str) -> bool | None:
        if self.registered is None:
            return None
        try:
            return self.registered(name)
        except Exception:  # noqa: BLE001 - a failed check (the server stopping, say) is no reason to stop
            return None

    def _fire(self, job: Job) -> None:
        assert job.next_run is not None
        from anvil_dev import services
        from anvil_dev.services import tasks

        try:
            last = services.current().tasks.get(job.last_task_id) if job.last_task_id else None
            if last is not None and last["status"] == tasks.RUNNING:
                self._report(job, f"[scheduled {job.task_name}] not launched: its previous run "
                                   f"(task {job.last_task_id}) is still running")
            else:
                caller = Caller(client_type="background_task", trusted=True, call_stack=[{"type": "scheduled_task"}])
                reply = self.launch({"args": [job.task_name], "kwargs": {}, "objects": []}, caller)
                self._launched(job, reply)
        except Exception as e:  # noqa: BLE001 - one bad launch must not stop the schedule
            self._report(job, f"[scheduled {job.task_name}] launch failed: {type(e).__name__}: {e}")
        # A run missed while the host was busy or asleep is skipped, not caught up.
        job.next_run = next_run(job.time_spec, max(job.next_run, self.clock.now()))

    def _launched(self, job: Job, reply: Message) -> None:
        if "error" in reply:
            err = reply.get("error") or {}
            if err.get("type") == "anvil.server.NoServerFunctionError":
                self._report(job, _not_registered(job))
            else:
                self._report(job, f"[scheduled {job.task_name}] not launched: {err.get('type')}: {err.get('message')}")
            return
        job.reported = None
        job.last_task_id = (reply.get("response") or {}).get("id")
        click.echo(f"[scheduled {job.task_name}] launched task {job.last_task_id}", err=True)

    def _report(self, job: Job, line: str) -> None:
        """Say what is wrong with a job once, not at every run."""
        if job.reported != line:
            job.reported = line
            click.secho(line, fg="yellow", err=True)


def registered_in(engine: Any, uplink: Any = None) -> Callable[[str], bool | None]:
    """`Scheduler.registered` for the host: a live uplink registration, or a background task in server_code
    (None while the server modules fail to import: their error is reported already)."""

    def registered(name: str) -> bool | None:
        command = "task:" + name
        if uplink is not None and uplink.match(command) == "live":
            return True
        desc = engine.describe()
        if desc.get("import_error"):
            return None
        return any(f.get("name") == command for f in desc.get("functions", []))

    return registered


def disabled_line(app: AppDir) -> str | None:
    """The start-up line when scheduled tasks are turned off and anvil.yaml has some."""
    entries = app.config.get("scheduled_tasks") or []
    if not isinstance(entries, list) or not entries:
        return None
    return (f"scheduled tasks off (--no-scheduled-tasks): the {len(entries)} in anvil.yaml will not run")


def _not_registered(job: Job) -> str:
    return (f"scheduled task {job.task_name!r} (job {job.job_id}): no background task named {job.task_name!r} "
            f"is registered - add @anvil.server.background_task def {job.task_name}() to server_code, "
            "or fix task_name in anvil.yaml scheduled_tasks")
