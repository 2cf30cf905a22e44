"""`anvil-dev tasks`: the app's background tasks and its scheduled tasks."""

from __future__ import annotations

import json

import click

from anvil_dev.cli._context import AppInfo, app_option, pass_info


@click.group("tasks", invoke_without_command=True)
@app_option
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1), help="How many tasks to show.")
@click.pass_context
def tasks_command(ctx: click.Context, limit: int) -> None:
    """List background tasks, newest first: status, duration and task_state; and the scheduled tasks."""
    if ctx.invoked_subcommand is not None:
        return
    import datetime

    from anvil_dev import services
    from anvil_dev.schedule import UTC, schedule_lines

    info = ctx.find_object(AppInfo)
    assert info is not None
    scheduled = schedule_lines(info.app.config, datetime.datetime.now(UTC))
    for line in scheduled:
        click.echo(line)
    if scheduled:
        click.echo()
    records = services.open(info.app).tasks.list_tasks(limit=limit)
    if not records:
        click.echo("no background tasks yet")
        return
    from tabulate import tabulate

    from anvil_dev._units import duration

    rows = []
    for t in records:
        started = datetime.datetime.fromtimestamp(t["start_time"]).strftime("%Y-%m-%d %H:%M:%S")
        state = json.dumps(t["state"], default=str, separators=(",", ":"))
        rows.append(
            [
                t["id"],
                t["name"][:20],
                t["status"],
                started,
                duration(t["duration"]),
                state[:60] + ("..." if len(state) > 60 else ""),
            ]
        )
    click.echo(
        tabulate(
            rows,
            headers=["ID", "TASK", "STATUS", "STARTED", "DURATION", "STATE"],
            tablefmt="plain",
            colalign=("left", "left", "left", "left", "right", "left"),
            disable_numparse=True,
        )
    )


@tasks_command.command("kill")
@click.argument("task_id")
@pass_info
def tasks_kill_command(info: AppInfo, task_id: str) -> None:
    """Kill the running background task TASK_ID (or a unique start of it)."""
    from anvil_dev import services
    from anvil_dev.services.tasks import TaskNotFound

    try:
        record = services.open(info.app).tasks.kill_task(task_id)
    except TaskNotFound as e:
        raise click.ClickException(str(e)) from None
    if not record["was_running"]:
        raise click.ClickException(f"task {record['id']} ({record['name']}) is not running (it is {record['status']})")
    click.echo(f"killed task {record['id']} ({record['name']})")
