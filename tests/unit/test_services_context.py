"""services.open(app_dir, settings): one context whose service objects the host, the CLI and the
workers all use; opening connects to nothing; secrets, SMTP and the lockout come from its Settings."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import yaml

from anvil_dev import services
from anvil_dev.config import Settings
from anvil_dev.services.cookies import Cookies
from anvil_dev.services.mediastore import MediaStore
from anvil_dev.services.outbox import Outbox
from anvil_dev.services.secrets import Secrets
from anvil_dev.services.sessions import Sessions
from anvil_dev.services.tables import TablesStore
from anvil_dev.services.tasks import Tasks
from anvil_dev.services.users import Users

SERVICES = {
    "tables": TablesStore,
    "users": Users,
    "sessions": Sessions,
    "cookies": Cookies,
    "outbox": Outbox,
    "secrets": Secrets,
    "tasks": Tasks,
    "media": MediaStore,
}


@pytest.fixture
def app(tmp_path: Path) -> Path:
    config = {
        "name": "Ctx",
        "services": [
            {
                "source": "/runtime/services/anvil/users.yml",
                "client_config": {},
                "server_config": {"user_table": "users"},
            },
            {"source": "/runtime/services/tables.yml", "server_config": {}},
        ],
        "db_schema": {
            "users": {
                "client": "none",
                "server": "full",
                "columns": [
                    {"name": "email", "type": "string"},
                    {"name": "enabled", "type": "bool"},
                    {"name": "confirmed_email", "type": "bool"},
                    {"name": "password_hash", "type": "string"},
                    {"name": "signed_up", "type": "datetime"},
                ],
            }
        },
        "secrets": {"api_key": {"type": "secret"}},
    }
    (tmp_path / "anvil.yaml").write_text(yaml.safe_dump(config))
    (tmp_path / "server_code").mkdir()
    return tmp_path


def test_each_service_is_one_object_of_the_context(app: Path) -> None:
    ctx = services.open(app, Settings())
    assert services.current() is ctx
    for name, cls in SERVICES.items():
        assert isinstance(getattr(ctx, name), cls), name
        assert getattr(ctx, name) is getattr(services.current(), name), f"{name} is made once per context"
    assert ctx.users.tables is ctx.tables
    # Opening again (a new anvil.yaml, another app) gives new objects: nothing outlives its context.
    again = services.open(app, Settings())
    assert again.tables is not ctx.tables


def test_threads_asking_at_once_get_the_same_object(app: Path) -> None:
    ctx = services.open(app, Settings())
    got: list[object] = []
    threads = [threading.Thread(target=lambda: got.append(ctx.users)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(u) for u in got}) == 1


def test_open_connects_to_nothing(app: Path) -> None:
    ctx = services.open(app, Settings())
    _ = ctx.tables, ctx.users, ctx.sessions, ctx.tasks, ctx.outbox
    assert ctx.db.existing_connection() is None and ctx.runtime_db.existing_connection() is None
    ctx.warm()  # what a zygote does before it forks
    assert ctx.db.existing_connection() is None
    assert ctx.tables.table_names() == ["users"]


def test_the_cli_and_the_workers_see_the_same_records(app: Path) -> None:
    """What `anvil-dev users add` writes through one context, another process's context reads."""
    services.open(app, Settings()).users.add_user("Ann@Example.org", "a long password")
    ctx = services.open(app, Settings())
    [user] = ctx.users.list_users()
    assert user["email"] == "ann@example.org" and user["has_password"]
    ctx.sessions.save("s1", user_id=user["id"])
    ctx.cookies.store("s1", "local", {"k": "v"}, 1)
    task_id = ctx.tasks.create("report")
    other = services.open(app, Settings())
    assert other.sessions.load("s1") == {"data": "{}", "user_id": user["id"]}
    assert other.cookies.load("s1", "local") == {"k": "v"}
    assert other.tasks.resolve(task_id[:6])["name"] == "report"


def test_secrets_come_from_the_settings_then_the_file(app: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANVIL_DEV_SECRET_api_key", raising=False)
    ctx = services.open(app, Settings())
    assert ctx.secrets.missing_secrets() == ["api_key"]
    ctx.secrets.set_secret("api_key", "from-file")
    assert ctx.secrets.get_secret("api_key") == "from-file"
    monkeypatch.setenv("ANVIL_DEV_SECRET_api_key", "from-env")
    assert ctx.secrets.get_secret("api_key") == "from-file", "the environment is read once, by config.build"
    given = services.open(app, Settings(secrets={"API_KEY": "from-settings"}))
    assert given.secrets.get_secret("api_key") == "from-settings"
    assert services.open(app).secrets.get_secret("api_key") == "from-env"  # no settings: config.build


def test_smtp_comes_from_the_settings(app: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("HOST", "PORT", "USER", "PASSWORD", "ENCRYPTION"):
        monkeypatch.delenv("ANVIL_DEV_SMTP_" + key, raising=False)
    assert services.open(app, Settings()).outbox.smtp_config() is None
    cfg = services.open(app, Settings(smtp={"host": "mail.example", "port": "587", "user": "me@example.org"}))
    relay = cfg.outbox.smtp_config()
    assert relay is not None and (relay.where(), relay.encryption, relay.user) == (
        "mail.example:587",
        "starttls",
        "me@example.org",
    )
    monkeypatch.setenv("ANVIL_DEV_SMTP_HOST", "env.example")
    relay = services.open(app).outbox.smtp_config()
    assert relay is not None and relay.host == "env.example"


def test_lockout_lasts_the_settings_seconds(app: Path) -> None:
    ctx = services.open(app, Settings(lockout_seconds=120.0))
    assert ctx.users.lockout_seconds == 120.0
    for _ in range(3):
        ctx.users.record_failure("[1,1]", max_failures=3)
    assert 100 < ctx.users.locked_for("[1,1]") <= 120
    ctx.users.clear_failures("[1,1]")
    assert ctx.users.locked_for("[1,1]") == 0


def test_user_table_names_the_users_table_or_says_what_to_add(app: Path) -> None:
    from anvil_dev.services.users import UsersError

    ctx = services.open(app, Settings())
    table_id, name = ctx.users.user_table()
    assert name == "users" and ctx.tables.table("users").id == table_id
    added = ctx.users.add_user("ann@example.org")
    assert added["id"].startswith(f"[{table_id},")
    config = yaml.safe_load((app / "anvil.yaml").read_text())
    config["services"] = [s for s in config["services"] if "users" not in s["source"]]
    (app / "anvil.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(UsersError, match="has no Users service"):
        services.open(app, Settings()).users.user_table()
