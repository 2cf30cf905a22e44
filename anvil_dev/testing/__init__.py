"""anvil-dev's pytest plugin: test an Anvil app's server code against the real thing, locally.

Installed with anvil-dev (the `pytest11` entry point), so in an app's directory plain `pytest` has:

- `anvil_call(name, *args, **kwargs)`: a call through the app server's /_/call, as a client makes
  it; a failure raises Anvil's exception (`anvil.server.PermissionDenied`, or a ValueError that is
  also an `anvil.server.AnvilWrappedError`) and puts the server's trace in pytest's report.
- `anvil_local(name, ...)`: the same call run in the test's own process (the server modules
  imported under the runtime, no server), for unit tests, freezegun and debuggers.
- `as_user(email)` / `logged_in(user)`: `with as_user("ann@example.org"): anvil_call(...)` calls as
  that user (made, enabled, when missing).
- `app_tables`: the app's Data Tables, for seeding and asserting; `outbox`: the mail sent;
  `background_tasks.wait(task)` / `.wait_all()`: run tasks to completion; `secrets["name"] = ...`.
- `anvil_server`: the server itself (`.url`), started once per session on a free port.

Each test gets an empty database (tables as anvil.yaml declares them, no users, sessions, mail or
tasks): ini option `anvil_dev_isolation = test | module | session` says how often it is reset.
The app is the directory of ini option `anvil_dev_app`, else the first of pytest's rootdir and
its parents that holds anvil.yaml. Nothing touches the app's own .anvil-dev/ data.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from anvil_dev.testing._calls import CallLog
from anvil_dev.testing._views import BackgroundTasks, Outbox, Secrets

if TYPE_CHECKING:
    from anvil_dev.testing._calls import HttpCaller, LocalCaller
    from anvil_dev.testing._env import TestData

_ISOLATION = ("test", "module", "session")
_LOG_KEY = pytest.StashKey[CallLog]()
_APP_KEY = pytest.StashKey[Path]()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        "anvil_dev_app", "The Anvil app's directory (default: the rootdir or a parent with anvil.yaml)", default=""
    )
    parser.addini(
        "anvil_dev_isolation", "How often anvil-dev's test database is reset: test, module or session", default="test"
    )
    parser.addini(
        "anvil_dev_keep_server_running",
        "Run the test server's calls in a warm worker (true/false; default: anvil.yaml's server_persist)",
        default="",
    )


def pytest_configure(config: pytest.Config) -> None:
    """In an app's directory, make `import anvil` in test modules the runtime server code sees, before
    they are collected (`anvil.server.PermissionDenied` in a test is then the class calls raise).
    Elsewhere (a project that merely has anvil-dev installed) the plugin changes nothing."""
    if _find_app(config, required=False) is not None:
        from anvil_dev.inprocess import use_runtime

        use_runtime()


def _find_app(config: pytest.Config, required: bool = True) -> Path | None:
    given = str(config.getini("anvil_dev_app") or "").strip()
    if given:
        base = Path(config.inipath).parent if config.inipath else config.rootpath
        app = (base / given).resolve()
        if not (app / "anvil.yaml").is_file():
            raise pytest.UsageError(f"anvil_dev_app = {given}: no anvil.yaml in {app}")
        return app
    for start in (config.rootpath, Path.cwd()):
        for d in (start, *start.parents):
            if (d / "anvil.yaml").is_file():
                return d
    if not required:
        return None
    raise pytest.UsageError(
        f"anvil-dev's fixtures need an Anvil app: no anvil.yaml in {config.rootpath} or its "
        "parents - run pytest in the app's directory or set anvil_dev_app in pytest.ini"
    )


@pytest.fixture(scope="session")
def anvil_app_dir(pytestconfig: pytest.Config) -> Path:
    """The app under test (override this fixture to test another one)."""
    app = _find_app(pytestconfig)
    assert app is not None
    return app


@pytest.fixture(scope="session")
def _anvil_data(anvil_app_dir: Path, tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config) -> TestData:
    from anvil_dev import config
    from anvil_dev.appdir import AppDir
    from anvil_dev.inprocess import use_runtime
    from anvil_dev.testing._env import TestData

    use_runtime()
    raw = str(pytestconfig.getini("anvil_dev_keep_server_running") or "").strip()
    persistent = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}.get(raw.lower())
    yaml_persist = AppDir(anvil_app_dir).runtime_options.get("server_persist")
    settings = config.build(
        anvil_app_dir, yaml_persist=yaml_persist, persistent=persistent, reload=False, scheduled_tasks=False, spares=1
    )
    return TestData(anvil_app_dir, tmp_path_factory.mktemp("anvil-dev"), settings)


_last_reset: list[str] = []


@pytest.fixture
def _anvil_fresh(request: pytest.FixtureRequest, _anvil_data: TestData) -> Iterator[TestData]:
    """Reset the database as ini option anvil_dev_isolation says, and keep the test's call log."""
    mode = str(request.config.getini("anvil_dev_isolation") or "test").strip()
    if mode not in _ISOLATION:
        raise pytest.UsageError(f"anvil_dev_isolation = {mode}: give one of {', '.join(_ISOLATION)}")
    key = {
        "test": request.node.nodeid,
        "module": request.node.module.__name__ if request.node.module else "",
        "session": "session",
    }[mode]
    if _last_reset != [key]:
        _anvil_data.reset()
        _last_reset[:] = [key]
    request.node.stash[_LOG_KEY] = CallLog()
    request.node.stash[_APP_KEY] = _anvil_data.app_dir.path
    yield _anvil_data


@pytest.fixture(scope="session")
def anvil_server(_anvil_data: TestData) -> Iterator[Any]:
    """The app's server, in threads of this process (its workers are processes of their own)."""
    import socket

    from anvil_dev.host.server import BackgroundServer

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = BackgroundServer(_anvil_data.app_dir, _anvil_data.settings.replace(port=port))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def _anvil_http(anvil_server: Any, _anvil_data: TestData) -> HttpCaller:
    from anvil_dev.testing._calls import HttpCaller

    return HttpCaller(anvil_server.url, _anvil_data.app_dir.path, _anvil_data.app_dir.cli_token(), CallLog())


@pytest.fixture
def anvil_call(request: pytest.FixtureRequest, _anvil_http: HttpCaller, _anvil_fresh: TestData) -> HttpCaller:
    """Call a server function through the server, as a client does: `anvil_call("add", 1, 2)`."""
    _anvil_http.reset()
    _anvil_http.log = request.node.stash[_LOG_KEY]
    return _anvil_http


@pytest.fixture(scope="session")
def _anvil_local_app(_anvil_data: TestData) -> None:
    from anvil_dev.inprocess import ImportFailed, import_app
    from anvil_dev.testing._calls import exception_for

    try:
        import_app(_anvil_data.app_dir)
    except ImportFailed as e:
        raise exception_for(e.error, _anvil_data.app_dir.path) from None


@pytest.fixture
def anvil_local(request: pytest.FixtureRequest, _anvil_local_app: None, _anvil_fresh: TestData) -> LocalCaller:
    """Call a server function in this process, no server: `anvil_local("add", 1, 2)`."""
    from anvil_dev.testing._calls import LocalCaller

    return LocalCaller(_anvil_fresh.app_dir.path, request.node.stash[_LOG_KEY])


def _callers(request: pytest.FixtureRequest) -> list[Any]:
    return [request.getfixturevalue(name) for name in ("anvil_call", "anvil_local") if name in request.fixturenames]


def _ensure_user(data: TestData, email: str, password: str | None = None) -> Any:
    """The user's row, made (enabled, confirmed) when there is none; `password` sets theirs."""
    from anvil.tables import get_table_by_id

    from anvil_dev.services.users import UsersError, normalise_email

    try:
        table_id, _name = data.ctx.users.user_table()
        row = get_table_by_id(table_id).get(email=normalise_email(email))
        if row is None or password is not None:
            data.ctx.users.add_user(email, password)
            row = get_table_by_id(table_id).get(email=normalise_email(email))
    except UsersError as e:
        raise pytest.UsageError(f"as_user({email!r}): {e.message}") from None
    return row


@pytest.fixture
def as_user(request: pytest.FixtureRequest, _anvil_fresh: TestData) -> Any:
    """`with as_user("ann@example.org"): anvil_call(...)`: calls in the block run as that user (created,
    enabled and confirmed when missing; `password=` sets theirs). The block gives the user's row."""

    @contextlib.contextmanager
    def as_user_(email: str, password: str | None = None) -> Iterator[Any]:
        row = _ensure_user(_anvil_fresh, email, password)
        with contextlib.ExitStack() as stack:
            for caller in _callers(request):
                stack.enter_context(caller.acting_as(email))
            yield row

    return as_user_


@pytest.fixture
def logged_in(request: pytest.FixtureRequest, _anvil_fresh: TestData) -> Any:
    """`with logged_in(user_row):` - as `as_user`, for a user row (or email) the test already has."""

    @contextlib.contextmanager
    def logged_in_(user: Any) -> Iterator[Any]:
        email = user if isinstance(user, str) else user["email"]
        with contextlib.ExitStack() as stack:
            for caller in _callers(request):
                stack.enter_context(caller.acting_as(email))
            yield user

    return logged_in_


@pytest.fixture
def app_tables(_anvil_fresh: TestData) -> Any:
    """The app's Data Tables (the runtime's `anvil.tables.app_tables`), on the test's database."""
    from anvil.tables import app_tables as tables

    return tables


@pytest.fixture
def anvil_services(_anvil_fresh: TestData) -> Any:
    """The services context (`.tables .users .sessions .outbox .secrets .tasks`) of the test's database."""
    return _anvil_fresh.ctx


@pytest.fixture
def outbox(_anvil_fresh: TestData) -> Outbox:
    """The mail sent during the test: `outbox.last["subject"]`, `outbox.to("ann@example.org")`."""
    return Outbox(_anvil_fresh)


@pytest.fixture
def background_tasks(_anvil_fresh: TestData) -> BackgroundTasks:
    """`background_tasks.wait(task)` gives a task's return value once it has run to completion."""
    return BackgroundTasks(_anvil_fresh)


@pytest.fixture
def secrets(_anvil_fresh: TestData) -> Secrets:
    """Set the app's secrets from the test (they last until the database is reset)."""
    return Secrets(_anvil_fresh)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """A failed test's report gets a section with its calls: what each printed, and the server's
    trace of each that failed."""
    report: Any = yield
    log = item.stash.get(_LOG_KEY, None)
    if report.when == "call" and log is not None and log.records:
        text = log.report(item.stash.get(_APP_KEY, Path(os.getcwd())))
        if text:
            report.sections.append(("anvil-dev server calls", text))
    return report
