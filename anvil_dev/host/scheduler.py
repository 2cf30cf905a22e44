"""Scheduled tasks: anvil.yaml `scheduled_tasks` launch their background task on schedule while serve runs.

When each job runs is anvil_dev/schedule.py's pure maths. A run missed while serve was stopped or busy
is skipped, not caught up.

A host thread (`Scheduler`) sleeps until the next run is due, on an Event that a reload of
anvil.yaml or shutdown sets. It launches through the same native handler as
`anvil.server.launch_background_task`, and skips a job whose previous run is still running, as
Anvil does. `ANVIL_DEV_SCHEDULE_SPEEDUP=60` makes a minute pass in a second (for tests).
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable
from typing import Any

import click

from anvil_dev.appdir import AppDir, AppDirError
from anvil_dev.protocol import Caller, Message
from anvil_dev.schedule import UTC, Job, describe, next_run, read_jobs


class _Clock:
    """Wall-clock time in UTC, running `speedup` times faster than real time from when it was made."""

    def __init__(self, speedup: float = 1.0, epoch: float | None = None) -> None:
        self.speedup = speedup
        # Hosts sharing a database share the epoch too, so that a sped-up clock reads alike on all.
        self._epoch = epoch
        self._t0 = time.time()
        self._m0 = time.monotonic()

    def now(self) -> dt.datetime:
        if self._epoch is not None:
            return dt.datetime.fromtimestamp(self._epoch + (time.time() - self._epoch) * self.speedup, UTC)
        return dt.datetime.fromtimestamp(self._t0 + (time.monotonic() - self._m0) * self.speedup, UTC)

    def seconds_until(self, when: dt.datetime) -> float:
        return max(0.0, (when - self.now()).total_seconds() / self.speedup)


class Scheduler:
    """Launches anvil.yaml's scheduled tasks on time, in a thread of the host.

    `launch(message, caller)` is the host's launch handler (the one `launch_background_task` reaches);
    `registered(name)` says whether a background task of that name exists (None: cannot tell).
    """

    def __init__(
        self,
        app: AppDir,
        launch: Callable[[Message, Caller], Message],
        registered: Callable[[str], bool | None] | None = None,
        speedup: float = 1.0,
        epoch: float | None = None,
        claim: bool = False,
    ) -> None:
        self.app = app
        self.launch = launch
        self.registered = registered
        self.clock = _Clock(speedup, epoch)
        # Several schedulers on one database (hosts, or gunicorn's processes): each run is claimed
        # there first, and only the scheduler that claims it launches it.
        self.claim = claim
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
            click.echo(
                f"scheduled tasks: time runs {self.clock.speedup:g}x faster (ANVIL_DEV_SCHEDULE_SPEEDUP)", err=True
            )
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
                click.secho(
                    f"scheduled task {job.task_name!r} (job {job.job_id}) will not run: {job.error}", fg="red", err=True
                )
            else:
                assert job.next_run is not None
                click.echo(
                    f"scheduled task {job.task_name}: {describe(job.time_spec)}, next run "
                    f"{job.next_run:%Y-%m-%d %H:%M:%S} UTC",
                    err=True,
                )
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
            job_key, due = "|".join(job.key), job.next_run.isoformat()
            if self.claim:
                won, previous = services.current().tasks.claim_schedule(job_key, due)
                if not won:
                    job.next_run = next_run(job.time_spec, max(job.next_run, self.clock.now()))
                    return
                job.last_task_id = previous or job.last_task_id
            last = services.current().tasks.get(job.last_task_id) if job.last_task_id else None
            if last is not None and last["status"] == tasks.RUNNING:
                self._report(
                    job,
                    f"[scheduled {job.task_name}] not launched: its previous run "
                    f"(task {job.last_task_id}) is still running",
                )
            else:
                caller = Caller(client_type="background_task", trusted=True, call_stack=[{"type": "scheduled_task"}])
                reply = self.launch({"args": [job.task_name], "kwargs": {}, "objects": []}, caller)
                self._launched(job, reply)
                if self.claim:
                    services.current().tasks.schedule_launched(job_key, due, job.last_task_id)
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
    return f"scheduled tasks off (--no-scheduled-tasks): the {len(entries)} in anvil.yaml will not run"


def _not_registered(job: Job) -> str:
    return (
        f"scheduled task {job.task_name!r} (job {job.job_id}): no background task named {job.task_name!r} "
        f"is registered - add @anvil.server.background_task def {job.task_name}() to server_code, "
        "or fix task_name in anvil.yaml scheduled_tasks"
    )
