"""Users, sessions and require_user through a real server: the Python client, the CLI, both engine modes."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from anvil_dev.client import Connection, ServerError

from helpers import ServerProcess, run_cli, write_module

USERS_MODULE = """
    import anvil.secrets
    import anvil.server
    import anvil.users
    from anvil.tables import app_tables

    # Apps do this at import time: outside a call there is no user (None), and nothing raises.
    IMPORT_TIME_USER = anvil.users.get_user()
    IMPORT_TIME_SECRET = anvil.secrets.get_secret("api_key")
    authenticated = anvil.server.callable(require_user=True)

    @anvil.server.callable(require_user=True)
    def whoami():
        return anvil.users.get_user()["email"]

    @anvil.server.callable(require_user=lambda u: u["admin"])
    def admin_only():
        return "admin ok"

    @anvil.server.callable(require_user=IMPORT_TIME_USER)
    def open_to_all():
        return "open"

    @authenticated
    def via_alias():
        return "alias ok"

    @anvil.server.callable
    def current():
        user = anvil.users.get_user()
        return user["email"] if user is not None else None

    @anvil.server.callable
    def import_time():
        return {"user": IMPORT_TIME_USER, "secret": IMPORT_TIME_SECRET}

    @anvil.server.callable
    def login_on_server(email, password):
        return anvil.users.login_with_email(email, password)["email"]

    @anvil.server.callable
    def force(email):
        anvil.users.force_login(app_tables.users.get(email=email))
        return anvil.users.get_user()["email"]

    @anvil.server.callable
    def logout_then_current():
        anvil.users.logout()
        return anvil.users.get_user()

    @anvil.server.callable
    def change_password(old, new):
        return anvil.users.reset_password(old, new)

    @anvil.server.callable
    def error_classes():
        import anvil.server as s
        u = anvil.users
        try:
            u.login_with_email("nobody@example.org", "x")
        except u.AuthenticationFailed as e:
            caught = type(e).__name__
        return {"caught": caught,
                "wrapped": all(issubclass(c, s.AnvilWrappedError) for c in (
                    u.UserExists, u.AuthenticationFailed, u.EmailNotConfirmed, u.AccountIsNotEnabled,
                    u.TooManyPasswordFailures, u.PasswordNotAcceptable, u.MFARequired, u.PasswordResetRequested)),
                "locked_is_auth": issubclass(u.TooManyPasswordFailures, u.AuthenticationFailed)}

    @anvil.server.callable
    def count_rows(table):
        return len(app_tables[table].search())

    @anvil.server.callable
    def bump():
        anvil.server.session["n"] = anvil.server.session.get("n", 0) + 1
        return anvil.server.session["n"]

    @anvil.server.callable
    def set_cookies(**values):
        anvil.server.cookies.local.set(**values)
        anvil.server.cookies.shared["shared_one"] = 1

    @anvil.server.callable
    def read_cookies():
        c = anvil.server.cookies
        return {"local": dict(c.local), "shared": dict(c.shared), "missing": c.local.get("nope", "default")}

    @anvil.server.callable
    def drop_cookies(key):
        del anvil.server.cookies.local[key]
        anvil.server.cookies.shared.clear()
"""


@pytest.fixture
def users_app(app_dir: Path, backend_database: str | None) -> Path:
    """The app, on SQLite and on PostgreSQL (backend_database sets ANVIL_DEV_DATABASE for serve and the CLI)."""
    write_module(app_dir, "Users", USERS_MODULE)
    return app_dir


def set_users_options(app: Path, **options: object) -> None:
    """Change the Users service's client_config in the app's anvil.yaml."""
    config = yaml.safe_load((app / "anvil.yaml").read_text())
    for svc in config["services"]:
        if svc["source"].endswith("/users.yml"):
            svc["client_config"].update(options)
    (app / "anvil.yaml").write_text(yaml.safe_dump(config))


@pytest.fixture(params=["fresh", "persistent"])
def users_server(request, users_app: Path, server_factory) -> ServerProcess:
    flag = "--fresh" if request.param == "fresh" else "--keep-server-running"
    return server_factory(users_app, flag, "--secret", "api_key=s3cret")


def error_of(conn: Connection, name: str, *args: object, **kwargs: object) -> ServerError:
    with pytest.raises(ServerError) as e:
        conn.call(name, *args, **kwargs)
    return e.value


# ---------------------------------------------------------------------------------------------------- signup


def test_signup_logs_in_and_the_login_holds_across_calls(users_server: ServerProcess) -> None:
    c = users_server.client()
    user = c.signup("Ann@Example.org ", "correct horse")
    assert user["email"] == "ann@example.org"  # trimmed and lower-cased, as Anvil stores it
    assert user["enabled"] is True and user["signed_up"] is not None
    assert "password_hash" not in user.keys(), "a browser must never see the password hash"
    for _ in range(3):  # each call is a new process in fresh mode: the login lives in the session
        assert c.call("whoami") == "ann@example.org"
    assert c.get_user()["email"] == "ann@example.org"
    assert users_server.client().call("current") is None, "another client has its own session"


def test_signup_refuses_existing_users_and_bad_passwords(users_app: Path, server_factory) -> None:
    set_users_options(users_app, require_secure_passwords=True)
    srv = server_factory(users_app, "--secret", "api_key=x")
    c = srv.client()
    e = error_of(c, "anvil.private.users.signup_with_email", "bob@example.org", "short")
    assert (e.type, e.message) == ("anvil.users.PasswordNotAcceptable", "Passwords must be 8 characters or more")
    e = error_of(c, "anvil.private.users.signup_with_email", "bob@example.org", "password123")
    assert e.type == "anvil.users.PasswordNotAcceptable" and "leaked" in e.message
    c.signup("bob@example.org", "a long unusual passphrase")
    e = error_of(srv.client(), "anvil.private.users.signup_with_email", "BOB@example.org", "another long one")
    assert (e.type, e.message) == ("anvil.users.UserExists", "This user already exists")


def test_signup_from_clients_can_be_turned_off(users_app: Path, server_factory) -> None:
    set_users_options(users_app, allow_signup=False)
    c = server_factory(users_app, "--secret", "api_key=x").client()
    e = error_of(c, "anvil.private.users.signup_with_email", "eve@example.org", "whatever123")
    assert e.message == "Signups from client code are not enabled."  # untyped on Anvil: users/core.clj line 357


def test_users_not_enabled_automatically_cannot_log_in(users_app: Path, server_factory) -> None:
    set_users_options(users_app, enable_automatically=False)
    srv = server_factory(users_app, "--secret", "api_key=x")
    c = srv.client()
    user = c.signup("new@example.org", "pass word 1")
    assert user["enabled"] is False and c.call("current") is None
    e = error_of(c, "anvil.private.users.login_with_email", "new@example.org", "pass word 1")
    assert (e.type, e.message) == (
        "anvil.users.AccountIsNotEnabled",
        "This account has not been enabled by an administrator",
    )
    assert run_cli("--app", str(users_app), "users", "add", "new@example.org").returncode == 0  # enables them
    assert c.login("new@example.org", "pass word 1")["email"] == "new@example.org"


def test_confirm_email_and_password_reset_emails(users_app: Path, server_factory) -> None:
    from anvil_dev import services

    set_users_options(users_app, confirm_email=True)
    srv = server_factory(users_app, "--secret", "api_key=x")
    c = srv.client()
    assert c.signup("conf@example.org", "confirm me")["email"] == "conf@example.org"
    assert c.call("current") is None, "not logged in before the address is confirmed"
    e = error_of(c, "anvil.private.users.login_with_email", "conf@example.org", "confirm me")
    assert e.type == "anvil.users.EmailNotConfirmed" and "confirm" in e.message
    sent = services.open(users_app).outbox.list_messages()
    assert [(m["to"], m["subject"]) for m in sent] == [(["conf@example.org"], "Confirm your email address")]
    assert run_cli("--app", str(users_app), "users", "add", "conf@example.org").returncode == 0  # confirms
    assert c.login("conf@example.org", "confirm me")["email"] == "conf@example.org"
    assert c.call("anvil.private.users.send_password_reset_email", "conf@example.org") is None
    latest = max(services.open(users_app).outbox.list_messages(), key=lambda m: m["id"])
    assert (latest["to"], latest["subject"]) == (["conf@example.org"], "Reset your password")
    e = error_of(c, "anvil.private.users.send_password_reset_email", "nobody@example.org")
    assert (e.type, e.message) == ("anvil.users.AuthenticationFailed", "This username does not exist or is disabled.")


def test_users_live_in_the_table_server_config_names(users_app: Path, server_factory) -> None:
    config = yaml.safe_load((users_app / "anvil.yaml").read_text())
    config["db_schema"]["members"] = {
        "title": "Members",
        "client": "none",
        "server": "full",
        "columns": [
            {"name": "email", "type": "string"},
            {"name": "enabled", "type": "bool"},
            {"name": "password_hash", "type": "string"},
        ],
    }
    for svc in config["services"]:
        if svc["source"].endswith("/users.yml"):
            svc["server_config"]["user_table"] = "members"
    (users_app / "anvil.yaml").write_text(yaml.safe_dump(config))
    c = server_factory(users_app, "--secret", "api_key=x").client()
    c.signup("member@example.org", "members only")
    assert c.call("whoami") == "member@example.org"
    assert (c.call("count_rows", "members"), c.call("count_rows", "users")) == (1, 0)


# ---------------------------------------------------------------------------------------------------- login


def test_login_wrong_password_and_logout(users_server: ServerProcess) -> None:
    users_server.client().signup("cat@example.org", "meow meow")
    c = users_server.client()
    for email, password in (("cat@example.org", "woof"), ("nobody@example.org", "meow meow")):
        e = error_of(c, "anvil.private.users.login_with_email", email, password)
        assert (e.type, e.message) == ("anvil.users.AuthenticationFailed", "Incorrect email address or password")
    assert c.call("current") is None
    assert c.login("CAT@example.org", "meow meow")["email"] == "cat@example.org"
    assert c.call("whoami") == "cat@example.org"
    c.logout()
    assert c.call("current") is None and c.get_user() is None
    e = error_of(c, "whoami")
    assert (e.type, e.message) == (
        "anvil.users.AuthenticationFailed",
        "You must be logged in to call this server function",
    )


def test_login_and_force_login_from_server_code(users_server: ServerProcess) -> None:
    users_server.client().signup("dog@example.org", "good boy!")
    c = users_server.client()
    assert c.call("login_on_server", "dog@example.org", "good boy!") == "dog@example.org"
    assert c.call("whoami") == "dog@example.org"
    c2 = users_server.client()
    assert c2.call("force", "dog@example.org") == "dog@example.org"
    assert c2.call("whoami") == "dog@example.org"
    assert c2.call("logout_then_current") is None and c2.call("current") is None
    e = error_of(c2, "anvil.private.users.force_login", None)
    assert e.type == "anvil.server.PermissionDenied", "clients must not log themselves in without a password"


def test_exceptions_are_anvils_classes(users_server: ServerProcess) -> None:
    assert users_server.client().call("error_classes") == {
        "caught": "AuthenticationFailed",
        "wrapped": True,
        "locked_is_auth": True,
    }


def test_repeated_failures_lock_the_account_for_a_while(users_app: Path, server_factory) -> None:
    config = yaml.safe_load((users_app / "anvil.yaml").read_text())
    for svc in config["services"]:
        if svc["source"].endswith("/users.yml"):
            svc["server_config"]["max_password_failures"] = 3
    (users_app / "anvil.yaml").write_text(yaml.safe_dump(config))
    srv = server_factory(users_app, "--secret", "api_key=x", env={"ANVIL_DEV_LOCKOUT_SECONDS": "3"})
    srv.client().signup("fox@example.org", "quick brown")
    c = srv.client()
    types = [error_of(c, "anvil.private.users.login_with_email", "fox@example.org", "wrong").type for _ in range(3)]
    assert types == ["anvil.users.AuthenticationFailed"] * 2 + ["anvil.users.TooManyPasswordFailures"]
    # Locked: even the right password is refused, without being checked.
    e = error_of(c, "anvil.private.users.login_with_email", "fox@example.org", "quick brown")
    assert e.type == "anvil.users.TooManyPasswordFailures"
    assert e.message.startswith("You have entered an incorrect password too many times.")
    deadline = time.monotonic() + 15
    while True:  # the lock lifts by itself
        try:
            assert c.login("fox@example.org", "quick brown")["email"] == "fox@example.org"
            break
        except ServerError as err:
            assert err.type == "anvil.users.TooManyPasswordFailures"
            assert time.monotonic() < deadline, "the account never unlocked"
            time.sleep(0.2)
    assert c.call("whoami") == "fox@example.org"


def test_reset_password(users_server: ServerProcess) -> None:
    c = users_server.client()
    c.signup("owl@example.org", "hoot hoot")
    other = users_server.client()
    other.login("owl@example.org", "hoot hoot")
    e = error_of(c, "change_password", "not it", "new secret")
    assert (e.type, e.message) == ("anvil.users.AuthenticationFailed", "Incorrect password")
    assert c.call("change_password", "hoot hoot", "new secret") is True
    assert other.call("current") is None, "other sessions of the user are logged out"
    assert c.call("whoami") == "owl@example.org", "the session that changed it stays logged in"
    with pytest.raises(ServerError):
        users_server.client().login("owl@example.org", "hoot hoot")
    assert users_server.client().login("owl@example.org", "new secret")["email"] == "owl@example.org"


# ---------------------------------------------------------------------------------------------------- require_user


def test_require_user_both_forms(users_server: ServerProcess) -> None:
    anon = users_server.client()
    e = error_of(anon, "whoami")
    assert (e.type, e.message) == (
        "anvil.users.AuthenticationFailed",
        "You must be logged in to call this server function",
    )
    e = error_of(anon, "admin_only")
    assert (e.type, e.message) == (
        "anvil.users.AuthenticationFailed",
        "You must be logged in to call server function 'admin_only'",
    )
    assert error_of(anon, "via_alias").type == "anvil.users.AuthenticationFailed"
    assert anon.call("open_to_all") == "open", "require_user=get_user() at import time is None: no requirement"

    # (`users add --admin` first: it creates the admin column the predicate reads.)
    r = run_cli(
        "--app", str(users_server.app_dir), "users", "add", "boss@example.org", "--password", "the boss!", "--admin"
    )
    assert r.returncode == 0, r.stderr
    pleb = users_server.client()
    pleb.signup("pleb@example.org", "just a user")
    assert pleb.call("via_alias") == "alias ok"
    e = error_of(pleb, "admin_only")
    assert (e.type, e.message) == (
        "anvil.server.PermissionDenied",
        "You do not have permission to call server function 'admin_only'",
    )
    boss = users_server.client()
    boss.login("boss@example.org", "the boss!")
    assert boss.call("admin_only") == "admin ok"


def test_get_user_and_get_secret_at_import_time(users_server: ServerProcess) -> None:
    c = users_server.client()
    c.signup("early@example.org", "early bird")
    # Even for a logged-in caller, the import-time value stays None: modules import outside any call.
    assert c.call("import_time") == {"user": None, "secret": "s3cret"}


# ---------------------------------------------------------------------------------------------------- sessions


def test_session_and_cookies_persist_across_calls(users_server: ServerProcess) -> None:
    c = users_server.client()
    assert [c.call("bump") for _ in range(3)] == [1, 2, 3]
    assert users_server.client().call("bump") == 1, "a new client starts a new session"
    c.call("set_cookies", theme="dark", recent=[1, 2])
    assert c.call("read_cookies") == {
        "local": {"theme": "dark", "recent": [1, 2]},
        "shared": {"shared_one": 1},
        "missing": "default",
    }
    assert users_server.client().call("read_cookies")["local"] == {}
    c.call("drop_cookies", "theme")
    assert c.call("read_cookies")["local"] == {"recent": [1, 2]}
    assert c.call("read_cookies")["shared"] == {}


def test_login_survives_a_restart(users_app: Path, server_factory) -> None:
    srv = server_factory(users_app, "--secret", "api_key=x")
    c = srv.client()
    c.signup("ray@example.org", "sunshine!!")
    srv.stop()
    srv2 = server_factory(users_app, "--keep-server-running", "--secret", "api_key=x")
    c.url = srv2.url  # the same cookie jar (cookies are per host, not per port)
    assert c.call("whoami") == "ray@example.org"


# ---------------------------------------------------------------------------------------------------- CLI


def test_cli_users_add_and_list(users_app: Path) -> None:
    app = str(users_app)
    r = run_cli("--app", app, "users", "list")
    assert r.returncode == 0 and "no users yet" in r.stdout
    r = run_cli("--app", app, "users", "add", "Zed@Example.org", "--password", "zzz sleep", "--admin")
    assert r.returncode == 0, r.stderr
    assert "added zed@example.org" in r.stdout
    r = run_cli("--app", app, "users", "add", "nopass@example.org")
    assert r.returncode == 0 and "(no password)" in r.stdout
    r = run_cli("--app", app, "users", "list")
    lines = r.stdout.splitlines()
    assert any("zed@example.org" in line and "admin" in line for line in lines), r.stdout
    assert any("nopass@example.org" in line and "no password" in line for line in lines), r.stdout
    assert "scrypt" not in r.stdout, "the list must not show password hashes"
    r = run_cli("--app", app, "users", "add", "zed@example.org", "--password", "zzz sleep 2")
    assert r.returncode == 0 and "updated zed@example.org" in r.stdout


def test_cli_users_add_without_a_users_service(users_app: Path) -> None:
    config = yaml.safe_load((users_app / "anvil.yaml").read_text())
    config["services"] = [s for s in config["services"] if not s["source"].endswith("/users.yml")]
    (users_app / "anvil.yaml").write_text(yaml.safe_dump(config))
    r = run_cli("--app", str(users_app), "users", "add", "x@example.org")
    assert r.returncode != 0 and "no Users service" in r.stderr


def test_cli_call_as_a_user(users_server: ServerProcess) -> None:
    app = str(users_server.app_dir)
    assert run_cli("--app", app, "users", "add", "cli@example.org", "--admin").returncode == 0
    r = run_cli("--app", app, "call", "--url", users_server.url, "--as", "cli@example.org", "whoami")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "cli@example.org"
    r = run_cli("--app", app, "call", "--url", users_server.url, "--as", "cli@example.org", "admin_only")
    assert r.stdout.strip() == "admin ok"
    r = run_cli("--app", app, "call", "--url", users_server.url, "whoami")
    assert r.returncode == 1 and "You must be logged in to call this server function" in r.stderr
    r = run_cli("--app", app, "call", "--url", users_server.url, "--as", "ghost@example.org", "whoami")
    assert r.returncode == 1 and "anvil-dev users add ghost@example.org" in r.stderr


def test_cli_login_flow(users_server: ServerProcess) -> None:
    app = str(users_server.app_dir)
    assert run_cli("--app", app, "users", "add", "shell@example.org", "--password", "from the shell").returncode == 0
    r = run_cli(
        "--app",
        app,
        "call",
        "--url",
        users_server.url,
        "anvil.private.users.login_with_email",
        "shell@example.org",
        "from the shell",
    )
    assert r.returncode == 0 and "shell@example.org" in r.stdout and "password_hash" not in r.stdout
    r = run_cli(
        "--app",
        app,
        "call",
        "--url",
        users_server.url,
        "anvil.private.users.login_with_email",
        "shell@example.org",
        "wrong",
    )
    assert r.returncode == 1 and "AuthenticationFailed: Incorrect email address or password" in r.stderr


# ---------------------------------------------------------------------------------------------------- columns

SPARSE_MODULE = """
    import anvil.server
    import anvil.users
    from anvil.tables import app_tables

    @anvil.server.callable
    def signup_on_server(email, password):
        user = anvil.users.signup_with_email(email, password)
        return {"signed_up": user["signed_up"] is not None, "enabled": user["enabled"]}

    @anvil.server.callable
    def wrong_then_right(email, password):
        try:
            anvil.users.login_with_email(email, "not " + password)
        except anvil.users.AuthenticationFailed:
            pass
        failures = app_tables.users.get(email=email)["n_password_failures"]
        user = anvil.users.login_with_email(email, password)
        return {"failures_after_wrong": failures, "failures_now": user["n_password_failures"],
                "last_login": user["last_login"] is not None}

    @anvil.server.callable
    def columns():
        return sorted(c["name"] for c in app_tables.users.list_columns())

    @anvil.server.callable
    def write_other_column(email):
        app_tables.users.get(email=email)["nickname"] = "x"
"""


@pytest.fixture
def sparse_users_app(app_dir: Path, backend_database: str | None) -> Path:
    """An app whose users table has only email and password_hash, auto_create_missing_columns off."""
    config = yaml.safe_load((app_dir / "anvil.yaml").read_text())
    config["db_schema"]["users"]["columns"] = [
        {"name": "email", "type": "string"},
        {"name": "password_hash", "type": "string"},
    ]
    for svc in config["services"]:
        if svc["source"].endswith("/tables.yml"):
            svc["server_config"] = {"auto_create_missing_columns": False}
    (app_dir / "anvil.yaml").write_text(yaml.safe_dump(config))
    write_module(app_dir, "Sparse", SPARSE_MODULE)
    return app_dir


def test_cli_users_add_creates_the_service_columns(sparse_users_app: Path, server_factory) -> None:
    # Anvil's Users service creates the columns it writes when the table lacks them
    # (server/core/src/anvil/dispatcher/native_rpc_handlers/users/util.clj lines 97-120: on
    # NoSuchColumnError, ensure-columns-exist! then the write again), auto-create or not.
    app = str(sparse_users_app)
    r = run_cli("--app", app, "users", "add", "cols@example.org", "--password", "long enough", "--admin")
    assert r.returncode == 0, r.stderr
    assert "added cols@example.org" in r.stdout
    srv = server_factory(sparse_users_app)
    c = srv.client()
    assert {"signed_up", "enabled", "confirmed_email", "admin"} <= set(c.call("columns"))
    assert (
        c.call("anvil.private.users.login_with_email", "cols@example.org", "long enough")["email"] == "cols@example.org"
    )


def test_signup_from_code_keeps_signed_up_and_login_counts_failures(sparse_users_app: Path, server_factory) -> None:
    # users/core.clj lines 364-367: signup writes signed_up and enabled (created if missing);
    # users/util.clj line 311: a wrong password counts in n_password_failures; v2/core.clj line 189:
    # a login puts it back to 0 and writes last_login.
    srv = server_factory(sparse_users_app)
    c = srv.client()
    assert c.call("signup_on_server", "code@example.org", "long enough") == {"signed_up": True, "enabled": True}
    assert c.call("wrong_then_right", "code@example.org", "long enough") == {
        "failures_after_wrong": 1,
        "failures_now": 0,
        "last_login": True,
    }
    assert {"signed_up", "enabled", "last_login", "n_password_failures"} <= set(c.call("columns"))
    # Only the service's own columns are created: app code still gets the tables' rule.
    e = error_of(c, "write_other_column", "code@example.org")
    assert e.type == "anvil.tables.NoSuchColumnError" and "nickname" in e.message
