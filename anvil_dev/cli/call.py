"""`anvil-dev call`: call a function (or an HTTP endpoint) on a running server and show the result as a person
reads it, with returned Media saved to files."""

from __future__ import annotations

import datetime
import json
import pprint
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import click

from anvil_dev.cli._context import AppInfo, pass_info, server_request


def _parse_arg(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text
    except RecursionError:
        raise click.BadParameter(f"{text[:40]}... is JSON nested too deeply to send", param_hint="ARGS") from None


@click.command("call", context_settings={"ignore_unknown_options": True})
@click.argument("name", required=False)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@click.option("--kw", "kwargs", multiple=True, metavar="KEY=VALUE", help="A keyword argument (repeatable).")
@click.option("--url", default="http://127.0.0.1:3030", show_default=True, envvar="ANVIL_DEV_URL")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON (wire format).")
@click.option("--as", "as_user", metavar="EMAIL", help="Call as this user (needs access to the app's .anvil-dev/).")
@click.option(
    "--media-dir",
    type=click.Path(file_okay=False),
    default=".",
    show_default=True,
    help="Where returned media are written.",
)
@click.option(
    "--http",
    "http_method",
    metavar="METHOD",
    help="Request NAME as a path of the app's HTTP endpoints (/_/api/NAME) with this method; "
    "ARGS become query parameters KEY=VALUE.",
)
@click.option(
    "--replay",
    "replay_id",
    type=click.IntRange(min=1),
    metavar="ID",
    help="Run call ID of the console's log again, as its caller, with the code as it is now.",
)
@click.option(
    "--last", "last_name", metavar="NAME", help="Run the newest logged call of function NAME again, as its caller."
)
@click.option("--recent", is_flag=True, help="List the server's recent calls (the ids --replay takes).")
@click.option(
    "--traceback",
    "all_frames",
    is_flag=True,
    help="On an error, show anvil-dev's and libraries' frames of the server's traceback too, not only the app's.",
)
@pass_info
def call_command(
    info: AppInfo,
    name: str | None,
    args: tuple[str, ...],
    kwargs: tuple[str, ...],
    url: str,
    as_json: bool,
    as_user: str | None,
    media_dir: str,
    http_method: str | None,
    replay_id: int | None,
    last_name: str | None,
    recent: bool,
    all_frames: bool,
) -> None:
    """Call server function NAME with ARGS (each parsed as JSON where it is valid JSON, else a string)."""
    from anvil_dev.client import check_url

    shown = _Traceback(info, all_frames or info.traceback)
    try:
        url = check_url(url)
    except ValueError as e:
        _fail(as_json, "UsageError", f"--url / ANVIL_DEV_URL: {e}", 2)
    if replay_id is not None or last_name is not None or recent:
        _check_replay_options(name, args, kwargs, as_user, http_method, replay_id, last_name, recent, as_json)
        cli_token = info.app.cli_token()
        if recent:
            sys.exit(_run_recent(url, cli_token))
        sys.exit(
            _run_replay(url, cli_token, replay_id, last_name, as_json=as_json, media_dir=Path(media_dir), shown=shown)
        )
    if http_method is not None:
        sys.exit(_run_http(url, http_method, name or "", list(args)))
    if not name or not name.strip():
        _fail(
            as_json,
            "UsageError",
            "NAME is empty - give the name of a server function (`anvil-dev serve` lists them)",
            2,
        )
    kw = {}
    for item in kwargs:
        key, sep, value = item.partition("=")
        if not sep or not key:
            _fail(as_json, "UsageError", f"--kw {item!r} is not KEY=VALUE", 2)
        kw[key] = _parse_arg(value)
    token = info.app.cli_token() if as_user else None
    code = _run(
        url,
        name,
        [_parse_arg(a) for a in args],
        kw,
        as_json=as_json,
        as_user=as_user,
        token=token,
        media_dir=Path(media_dir),
        shown=shown,
    )
    sys.exit(code)


class _Traceback:
    """How `call` shows a failed call's server traceback: the app's frames, or every frame."""

    def __init__(self, info: AppInfo | None = None, internal: bool = False) -> None:
        self.info = info
        self.internal = internal

    def failure(self, conn: Any, call_id: int | None) -> dict[str, Any] | None:
        """The call's frames from the server (names, source lines); None without the app's CLI token."""
        if call_id is None or self.info is None:
            return None
        try:
            token = self.info.app.cli_token()
        except (click.ClickException, OSError):
            return None  # not run in the app's directory: the wire trace's files and lines only
        return conn.failure(call_id, token=token)

    def lines(self, error: dict[str, Any], frames: list[dict[str, Any]] | None) -> list[str]:
        from anvil_dev import tracebacks

        return tracebacks.format_lines(error, frames, internal=self.internal, hint="call --traceback shows them")


def _fail(as_json: bool, type_name: str, message: str, code: int, prefix: str = "Error: ") -> NoReturn:
    """Stop with one line on stderr, or with `{"error": ...}` on stdout under --json (scripts parse stdout)."""
    if as_json:
        click.echo(json.dumps({"error": {"type": type_name, "message": message, "trace": []}}, ensure_ascii=False))
    else:
        click.secho(f"{prefix}{message}", fg="red", err=True)
    sys.exit(code)


def _check_replay_options(
    name: str | None,
    args: tuple[str, ...],
    kwargs: tuple[str, ...],
    as_user: str | None,
    http_method: str | None,
    replay_id: int | None,
    last_name: str | None,
    recent: bool,
    as_json: bool,
) -> None:
    """A replay has its original's name, arguments and caller: refuse options that would change them."""
    chosen = [
        opt
        for opt, given in (("--replay", replay_id is not None), ("--last", last_name is not None), ("--recent", recent))
        if given
    ]
    if len(chosen) > 1:
        _fail(as_json, "UsageError", f"{' and '.join(chosen)} cannot be used together: give one of them", 2)
    if name is not None or args or kwargs:
        _fail(
            as_json,
            "UsageError",
            f"{chosen[0]} reruns a logged call with its own name and arguments: give no "
            "NAME, ARGS or --kw with it (make a new call without it to change them)",
            2,
        )
    if as_user is not None or http_method is not None:
        _fail(
            as_json,
            "UsageError",
            f"{chosen[0]} reruns a logged call as its original caller: --as and --http do not apply to it",
            2,
        )
    if last_name is not None and not last_name.strip():
        _fail(as_json, "UsageError", "--last is empty - give the name of a server function", 2)


def _save_media(value: Any, media_dir: Path, saved: list[str]) -> Any:
    """Write every Media in a result to a file; returns the result with paths in their place."""
    from anvil_dev.client import Media

    if isinstance(value, Media):
        media_dir.mkdir(parents=True, exist_ok=True)
        name = Path(value.name or "media.bin").name or "media.bin"
        target = media_dir / name
        n = 1
        while target.exists():
            target = media_dir / f"{Path(name).stem}-{n}{Path(name).suffix}"
            n += 1
        size = value.write_to_file(str(target))
        saved.append(f"wrote {size} bytes ({value.content_type}) to {target}")
        return _SavedMedia(str(target), value.content_type)
    if isinstance(value, list):
        return [_save_media(v, media_dir, saved) for v in value]
    if isinstance(value, dict):
        return {k: _save_media(v, media_dir, saved) for k, v in value.items()}
    return value


class _SavedMedia:
    def __init__(self, path: str, content_type: str) -> None:
        self.path = path
        self.content_type = content_type

    def __repr__(self) -> str:
        return f"<Media {self.content_type} saved to {self.path}>"


def _json_default(value: Any) -> Any:
    from anvil_dev.client import PortableObject

    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    if isinstance(value, PortableObject):
        return {"__type__": value.type_name, **(value.data if isinstance(value.data, dict) else {"data": value.data})}
    if isinstance(value, _SavedMedia):
        return {"__type__": "Media", "content_type": value.content_type, "path": value.path}
    return repr(value)


def _run_http(url: str, method: str, path: str, params: list[str]) -> int:
    """`anvil-dev call --http GET /path k=v`: request an HTTP endpoint and print what it answered."""
    query = dict(p.partition("=")[::2] for p in params)
    resp = server_request(url, method.upper(), "/_/api/" + path.lstrip("/"), timeout=120, params=query)
    if resp is None:
        return 2
    click.echo(f"HTTP {resp.status_code} {resp.headers.get('Content-Type', '')}", err=True)
    if 300 <= resp.status_code < 400 and resp.headers.get("Location"):
        click.echo(f"Location: {resp.headers['Location']} (not followed)", err=True)
    click.echo(resp.text, nl=not resp.text.endswith("\n"))
    return 0 if resp.ok else 1


def _run(
    url: str,
    name: str,
    args: list[Any],
    kwargs: dict[str, Any],
    *,
    as_json: bool = False,
    as_user: str | None = None,
    token: str | None = None,
    media_dir: Path = Path("."),
    shown: _Traceback | None = None,
) -> int:
    """Make the call and print what came back: the result on stdout, the function's output and errors on stderr."""
    # Imported here: the client pulls in http.client, which every other command can do without.
    from anvil_dev.client import connect

    conn = connect(url, as_user=as_user, token=token, client_tag="cli")
    return _show(conn, lambda: conn.call(name, *args, **kwargs), as_json, media_dir, shown or _Traceback())


def _run_replay(
    url: str,
    token: str,
    call_id: int | None,
    last: str | None,
    *,
    as_json: bool = False,
    media_dir: Path = Path("."),
    shown: _Traceback | None = None,
) -> int:
    """`call --replay ID` / `--last NAME`: which call ran again (on stderr), then its result as `call` shows one."""
    from anvil_dev.client import ServerError, connect

    conn = connect(url, client_tag="cli")

    def replay() -> Any:
        try:
            result, about = conn.replay(call_id, last, token=token)
        except ServerError as e:
            if e.replay:
                _say_replay(e.replay)
            raise
        _say_replay(about)
        return result

    return _show(conn, replay, as_json, media_dir, shown or _Traceback())


def _say_replay(about: dict[str, Any]) -> None:
    click.echo(f"replayed call #{about.get('of')} ({about.get('command')}) as call #{about.get('id')}", err=True)
    for note in about.get("notes") or []:
        click.secho(f"note: {note}", fg="yellow", err=True)


def _run_recent(url: str, token: str) -> int:
    """`call --recent`: the server's recent calls, newest first, with the ids --replay takes."""
    resp = server_request(url, "GET", "/_/dev/replay", timeout=30, headers={"X-Anvil-Dev-Token": token})
    if resp is None:
        return 2
    data = resp.json()
    if not resp.ok:
        click.secho(f"{data['error'].get('type')}: {data['error'].get('message')}", fg="red", err=True)
        return 1
    calls = data.get("calls") or []
    if not calls:
        click.echo("no calls since the server started", err=True)
    for c in calls:
        when = datetime.datetime.fromtimestamp(c["time"]).strftime("%H:%M:%S")
        outcome = "ok" if c.get("ok") else "failed" if c.get("ok") is False else "running"
        extra = "".join(
            [
                f" as {c['user']}" if c.get("user") else "",
                f" (replay of #{c['replay_of']})" if c.get("replay_of") else "",
                "" if c.get("replayable") else " (too large to replay)",
            ]
        )
        click.echo(f"#{c['id']:<5} {when}  {c['command']}  [{c.get('client_type')}] {outcome}{extra}")
    return 0


def _show(conn: Any, make_call: Callable[[], Any], as_json: bool, media_dir: Path, shown: _Traceback) -> int:
    from anvil_dev.client import ConnectionFailed, ServerError

    try:
        result = make_call()
    except ConnectionFailed as e:
        _fail(as_json, type(e).__name__, str(e), 2, prefix="")
    except ServerError as e:
        if e.output:
            click.echo(e.output, err=True, nl=not e.output.endswith("\n"))
        error = {"type": e.type, "message": e.message, "trace": e.trace}
        call_id = e.call_id if e.replay is None else e.replay.get("id")
        failure = shown.failure(conn, call_id)
        frames = failure.get("frames") if failure else None
        if as_json:
            out: dict[str, Any] = {"error": error}
            if frames:
                out["frames"] = frames
            click.echo(json.dumps(out, default=str, ensure_ascii=False))
            return 1
        *trace, last = shown.lines(error, frames)
        for line in trace:
            click.echo(line, err=True)
        click.secho(last, fg="red", err=True)
        return 1
    if conn.last_output:
        click.echo(conn.last_output, err=True, nl=not conn.last_output.endswith("\n"))
    saved: list[str] = []
    result = _save_media(result, media_dir, saved)
    for line in saved:
        click.echo(line, err=True)
    if as_json:
        click.echo(json.dumps(result, default=_json_default, ensure_ascii=False))
    elif isinstance(result, str):
        click.echo(result)
    else:
        click.echo(pprint.pformat(result, sort_dicts=False))
    return 0
