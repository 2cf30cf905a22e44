"""Calling server functions from a test: over HTTP as any client does, or in this process.

Either way a failure raises Anvil's exception (the runtime's class for Anvil's own types, such as
`anvil.server.PermissionDenied`; for a built-in type such as ValueError, a class that is both
`anvil.server.AnvilWrappedError` and that type), carrying the server's trace, which the plugin also
puts in pytest's report.
"""

from __future__ import annotations

import builtins
import contextlib
import copy
import linecache
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from anvil_dev.protocol import Caller

_wrapped_builtins: dict[str, type[BaseException]] = {}


@dataclass
class CallRecord:
    """One call a test made, for the report: what was called, what it printed, how it failed."""

    name: str
    user: str | None
    output: str = ""
    error: dict[str, Any] | None = None


@dataclass
class CallLog:
    records: list[CallRecord] = field(default_factory=list)

    def report(self, app_path: Path) -> str:
        """The failed calls with their server traces, and what each call printed."""
        lines: list[str] = []
        for rec in self.records:
            who = f" as {rec.user}" if rec.user else ""
            if rec.output:
                lines.append(f"{rec.name}{who} printed:")
                lines.extend("  " + line for line in rec.output.rstrip("\n").split("\n"))
            if rec.error is not None:
                lines.append(f"{rec.name}{who} raised {rec.error.get('type')}: {rec.error.get('message')}")
                lines.extend(format_trace(rec.error.get("trace") or [], app_path))
        return "\n".join(lines)


def format_trace(trace: list[Any], app_path: Path) -> list[str]:
    """Anvil's [[file, line], ...] (innermost first) as Python prints a traceback: outermost first."""
    out = ["Server traceback (most recent call last):"] if trace else []
    for file, line in reversed(trace):
        out.append(f'  File "{file}", line {line}')
        source = linecache.getline(str(app_path / str(file)), int(line or 0)).strip()
        if source:
            out.append(f"    {source}")
    return out


def exception_for(err: Mapping[str, Any], app_path: Path) -> BaseException:
    """The exception a test sees for an error reply: Anvil's class, with the server trace as a note."""
    from anvil import _errors

    type_name = str(err.get("type") or "Exception")
    builtin = getattr(builtins, type_name, None)
    if (
        "." not in type_name
        and isinstance(builtin, type)
        and issubclass(builtin, Exception)
        and type_name not in _errors._registered
    ):
        cls = _wrapped_builtins.get(type_name)
        if cls is None:
            # Named as the server named it: the report says "ValueError: ...", as the server's would.
            cls = _wrapped_builtins[type_name] = type(
                type_name, (_errors.AnvilWrappedError, builtin), {"__module__": "builtins"}
            )
        exc: BaseException = cls(dict(err))
    else:
        exc = _errors.exception_from_error(dict(err))
    trace = format_trace(err.get("trace") or [], app_path)
    if trace and hasattr(exc, "add_note"):
        exc.add_note("\n".join(trace))
    return exc


class HttpCaller:
    """`anvil_call(name, *args, **kwargs)`: a call through the server's /_/call, as a client makes it."""

    def __init__(self, url: str, app_path: Path, cli_token: str, log: CallLog) -> None:
        self.url = url
        self.app_path = app_path
        self.cli_token = cli_token
        self.log = log
        self.user: str | None = None
        self._connections: dict[str | None, Any] = {}

    def _connection(self, user: str | None) -> Any:
        from anvil_dev.client import connect

        conn = self._connections.get(user)
        if conn is None:
            conn = self._connections[user] = connect(
                self.url, as_user=user, token=self.cli_token if user else None, client_tag="pytest"
            )
        return conn

    def __call__(self, name: str, /, *args: Any, **kwargs: Any) -> Any:
        __tracebackhide__ = True
        from anvil_dev.client import ServerError

        conn = self._connection(self.user)
        record = CallRecord(name, self.user)
        self.log.records.append(record)
        try:
            result = conn.call(name, *args, **kwargs)
        except ServerError as e:
            record.output = e.output
            record.error = {"type": e.type, "message": e.message, "trace": e.trace}
            raise exception_for(record.error, self.app_path) from None
        record.output = conn.last_output or ""
        return result

    @contextlib.contextmanager
    def acting_as(self, email: str | None) -> Iterator[HttpCaller]:
        before, self.user = self.user, email
        try:
            yield self
        finally:
            self.user = before

    def reset(self) -> None:
        """A new test: new sessions (the database that held the old ones is gone), no user."""
        self.user = None
        self._connections.clear()


class LocalCaller:
    """`anvil_local(name, *args, **kwargs)`: the function run in this process, under the runtime, with
    the serialization round trip a real call has; no server."""

    def __init__(self, app_path: Path, log: CallLog) -> None:
        self.app_path = app_path
        self.log = log
        self.user: str | None = None

    def __call__(self, name: str, /, *args: Any, **kwargs: Any) -> Any:
        __tracebackhide__ = True
        from anvil import _engine_hooks
        from anvil._registry import REGISTRY

        from anvil_dev import wire

        msg = wire.encode(
            {"args": list(args), "kwargs": kwargs}, REGISTRY, error_prefix="Cannot serialize arguments to function. "
        )
        msg["command"] = name
        caller = Caller(client_type="browser", trusted=True, user_email_override=self.user)
        output: list[str] = []
        record = CallRecord(name, self.user)
        self.log.records.append(record)
        with _printing_to(output):
            reply = _engine_hooks.execute(msg, caller).message
        record.output = "".join(output)
        if "error" in reply:
            record.error = reply["error"]
            raise exception_for(reply["error"], self.app_path)
        reply = copy.copy(reply)
        wire.decode(reply, REGISTRY, trusted=True)
        return reply.get("response")

    @contextlib.contextmanager
    def acting_as(self, email: str | None) -> Iterator[LocalCaller]:
        before, self.user = self.user, email
        try:
            yield self
        finally:
            self.user = before

    def reset(self) -> None:
        self.user = None


@contextlib.contextmanager
def _printing_to(output: list[str]) -> Iterator[None]:
    """print() inside the call goes to its output (as in a worker) and on to the test's stdout."""
    import sys

    class _Tee:
        def __init__(self, stream: Any) -> None:
            self.stream = stream

        def write(self, text: str) -> int:
            output.append(text)
            return self.stream.write(text)

        def flush(self) -> None:
            self.stream.flush()

        def __getattr__(self, name: str) -> Any:
            return getattr(self.stream, name)

    before = sys.stdout
    sys.stdout = _Tee(before)
    try:
        yield
    finally:
        sys.stdout = before
