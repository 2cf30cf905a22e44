"""Scheduled tasks: anvil.yaml's schedule through a real server (time compressed with
ANVIL_DEV_SCHEDULE_SPEEDUP), the flag and `anvil-dev tasks`. The next-run maths is in unit/test_schedule.py."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from anvil_dev.schedule import describe, next_run

from helpers import ServerProcess, every_minute, run_cli, set_schedule, write_module

UTC = dt.timezone.utc

TICK_MODULE = """
    import anvil.server
    from anvil.tables import app_tables

    @anvil.server.background_task
    def tick():
        c = anvil.server.context
        anvil.server.task_state["client"] = c.client.type
        app_tables.feedback.add_row(name="tick", feedback=c.client.type + " " + str(c.background_task_id))
        print("tick ran")

    @anvil.server.callable
    def ticks():
        return [r["feedback"] for r in app_tables.feedback.search(name="tick")]
"""

# A minute passes in half a second: "every minute" runs twice a second.
FAST = {"ANVIL_DEV_SCHEDULE_SPEEDUP": "120"}


def wait_until(check: Callable[[], Any], timeout: float = 10) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.1)


@pytest.fixture
def tick_app(app_dir: Path) -> Path:
    write_module(app_dir, "Ticks", TICK_MODULE)
    return app_dir


def test_a_scheduled_task_runs_on_schedule_as_a_background_task(
    tick_app: Path, server_factory: Callable[..., ServerProcess]
) -> None:
    set_schedule(tick_app, [every_minute("tick")])
    server = server_factory(tick_app, env=FAST)
    client = server.client()
    runs = wait_until(lambda: len(client.call("ticks")) >= 2 and client.call("ticks"))
    assert runs, f"the scheduled task did not run twice:\n{server.output}"
    # Each run is its own background task, launched by the schedule.
    assert all(r.startswith("background_task ") for r in runs)
    assert len({r.split()[1] for r in runs}) == len(runs)
    server.wait_for_output("scheduled task tick: every minute, next run")
    server.wait_for_output("[scheduled tick] launched task")
    server.wait_for_output("tick ran")


def test_an_unknown_task_name_gets_one_line_and_a_fixed_anvil_yaml_runs(
    tick_app: Path, server_factory: Callable[..., ServerProcess]
) -> None:
    set_schedule(tick_app, [every_minute("tock")])
    server = server_factory(tick_app, env=FAST)
    server.wait_for_output("no background task named 'tock' is registered")
    client = server.client()
    # It stays one line although the job comes due again and again (three times in 1.5 s here),
    # and the server keeps serving.
    time.sleep(1.5)
    assert server.output.count("no background task named 'tock'") == 1
    assert client.call("ticks") == []
    mark = server.mark()
    set_schedule(tick_app, [every_minute("tick")])  # the reload hook re-reads the schedule
    server.wait_for_output("scheduled task tick: every minute", after=mark, timeout=15)
    assert wait_until(lambda: len(client.call("ticks")) >= 1), server.output


def test_no_scheduled_tasks_turns_them_off(tick_app: Path, server_factory: Callable[..., ServerProcess]) -> None:
    set_schedule(tick_app, [every_minute("tick")])
    server = server_factory(tick_app, env=dict(FAST, ANVIL_DEV_NO_SCHEDULED_TASKS="1"))
    server.wait_for_output("scheduled tasks off (--no-scheduled-tasks): the 1 in anvil.yaml will not run")
    # Two seconds are four scheduled minutes here: it would have run.
    time.sleep(2)
    assert server.client().call("ticks") == []
    assert "[scheduled" not in server.output


def test_tasks_command_shows_the_schedule_and_each_next_run(app_dir: Path) -> None:
    jobs: list[dict[str, Any]] = [
        {"task_name": "slow", "time_spec": {"n": 10, "every": "minute", "at": {}}, "job_id": "QMUPCYEH"},
        {
            "task_name": "launch",
            "time_spec": {"n": 5, "every": "day", "at": {"hour": 3, "minute": 0}},
            "job_id": "YKTLUUWJ",
        },
        {
            "task_name": "monthly_update",
            "time_spec": {"n": 1, "every": "month", "at": {"hour": 10, "minute": 0, "day": 21}},
            "job_id": "VHPWDKAE",
        },
        {"task_name": "broken", "time_spec": {"n": 1, "every": "fortnight"}, "job_id": "BADJOB"},
    ]
    set_schedule(app_dir, jobs)
    before = dt.datetime.now(UTC)
    result = run_cli("--app", str(app_dir), "tasks")
    after = dt.datetime.now(UTC)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    lines = {line.split()[0]: line for line in out.splitlines() if line.strip()}
    assert "NEXT RUN (UTC)" in lines["SCHEDULED"]
    for job in jobs[:3]:
        line = lines[job["job_id"]]
        assert job["task_name"] in line and describe(job["time_spec"]) in line
        expected = {f"{next_run(job['time_spec'], t):%Y-%m-%d %H:%M}" for t in (before, after)}
        assert any(e in line for e in expected), (line, expected)
    assert "invalid: time_spec every is 'fortnight'" in lines["BADJOB"]
    assert "no background tasks yet" in out


def test_tasks_command_without_a_schedule_is_unchanged(app_dir: Path) -> None:
    result = run_cli("--app", str(app_dir), "tasks")
    assert result.returncode == 0, result.stderr
    assert "SCHEDULED" not in result.stdout
    assert "no background tasks yet" in result.stdout


LONG_TASK_MODULE = """
    import time

    import anvil.server

    @anvil.server.background_task
    def long_job():
        print("long job started")
        time.sleep(60)
"""


def test_a_job_whose_previous_run_is_still_running_is_not_launched_again(
    app_dir: Path, server_factory: Callable[..., ServerProcess]
) -> None:
    write_module(app_dir, "Long", LONG_TASK_MODULE)
    set_schedule(app_dir, [every_minute("long_job", "LONGJOB")])
    server = server_factory(app_dir, env=FAST)
    server.wait_for_output("long job started")
    server.wait_for_output("[scheduled long_job] not launched: its previous run (task")
    listed = run_cli("--app", str(app_dir), "tasks").stdout
    # The background tasks table, below the schedule: one run, still running.
    rows = listed.split("\n\n", 1)[1].splitlines()[1:]
    assert [row.split()[1:3] for row in rows] == [["long_job", "running"]], listed
