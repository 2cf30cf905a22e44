"""`anvil-dev call`: call a function on a running server and show the result as a person reads it."""

from __future__ import annotations

import datetime
import json
import pprint
from pathlib import Path
from typing import Any

import click

from anvil_dev.client import ConnectionFailed, Media, PortableObject, ServerError, connect


def _save_media(value: Any, media_dir: Path, saved: list[str]) -> Any:
    """Write every Media in a result to a file; returns the result with paths in their place."""
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
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    if isinstance(value, PortableObject):
        return {"__type__": value.type_name, **(value.data if isinstance(value.data, dict) else {"data": value.data})}
    if isinstance(value, _SavedMedia):
        return {"__type__": "Media", "content_type": value.content_type, "path": value.path}
    return repr(value)


def run_http(url: str, method: str, path: str, params: list[str]) -> int:
    """`anvil-dev call --http GET /path k=v`: request an HTTP endpoint and print what it answered."""
    import requests

    query = dict(p.partition("=")[::2] for p in params)
    target = url.rstrip("/") + "/_/api/" + path.lstrip("/")
    try:
        resp = requests.request(method.upper(), target, params=query, timeout=120)
    except requests.ConnectionError:
        click.echo(f"no anvil-dev server at {url} - start one with `anvil-dev serve`", err=True)
        return 2
    click.echo(f"HTTP {resp.status_code} {resp.headers.get('Content-Type', '')}", err=True)
    click.echo(resp.text, nl=not resp.text.endswith("\n"))
    return 0 if resp.ok else 1


def run(url: str, name: str, args: list[Any], kwargs: dict[str, Any], *, as_json: bool = False,
        as_user: str | None = None, token: str | None = None, media_dir: Path = Path(".")) -> int:
    conn = connect(url, as_user=as_user, token=token, client_tag="cli")
    try:
        result = conn.call(name, *args, **kwargs)
    except ConnectionFailed as e:
        click.echo(str(e), err=True)
        return 2
    except ServerError as e:
        if e.output:
            click.echo(e.output, err=True, nl=not e.output.endswith("\n"))
        click.secho(f"{e.type}: {e.message}", fg="red", err=True)
        for file, line in e.trace or []:
            click.echo(f"  at {file}, line {line}", err=True)
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
