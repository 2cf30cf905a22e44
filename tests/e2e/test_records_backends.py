"""The services' records on both backends, in-process: sessions, cookies, tasks, mail and media behave
alike on SQLite and on a real PostgreSQL (started by the postgres_server fixture)."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from anvil_dev import config
from anvil_dev.appdir import AppDir
from anvil_dev.scaffold import scaffold
from anvil_dev.services import shared_value
from anvil_dev.services.cookies import Cookies
from anvil_dev.services.db import AnyDatabase, Database, PostgresDatabase, placeholders, postgres_ddl
from anvil_dev.services.mediastore import MediaStore
from anvil_dev.services.outbox import Attachment, Outbox
from anvil_dev.services.sessions import Sessions
from anvil_dev.services.tasks import COMPLETED, KILLED, RUNNING, TaskNotFound, Tasks


@pytest.fixture(params=["sqlite", "postgresql"])
def records_db(request: pytest.FixtureRequest, tmp_path: Path) -> AnyDatabase:
    if request.param == "sqlite":
        return Database(tmp_path / "records.sqlite3")
    return PostgresDatabase(request.getfixturevalue("postgres_url"))


def test_sessions_save_load_subscribe_and_delete(records_db: AnyDatabase) -> None:
    s = Sessions(records_db)
    assert s.load("abc") is None
    s.save("abc", data='{"n": 1}', user_id="[1,2]", remember=True)
    s.save("abc", data='{"n": 2}')  # only what is given changes
    assert s.load("abc") == {"data": '{"n": 2}', "user_id": "[1,2]"}
    s.subscribe("abc", "news")
    s.subscribe("abc", "news")  # twice is once
    s.subscribe("abc", "alerts")
    assert s.subscriptions("abc") == ["alerts", "news"]
    assert [r["id"] for r in s.list_sessions()] == ["abc"]
    s.delete("abc")
    assert (s.load("abc"), s.subscriptions("abc")) == (None, [])


def test_cookies_store_replace_and_move_over_a_newer_session(records_db: AnyDatabase) -> None:
    c = Cookies(records_db)
    c.store("old", "local", {"a": "1", "b": "2"}, 30)
    c.store("old", "local", {"a": "3"}, 30)  # replaces
    c.store("new", "local", {"a": "on new", "z": "only new"}, 30)
    c.move("old", "new")  # the old session's cookies win over the new one's of the same name
    assert c.load("new", "local") == {"a": "3", "b": "2", "z": "only new"}
    assert c.load("old", "local") == {}
    c.store("new", "shared", {"gone": "x"}, -1)  # expired already
    assert c.load("new", "shared") == {}
    c.delete("new", "local", "a")
    assert c.load("new", "local") == {"b": "2", "z": "only new"}


def test_tasks_records(records_db: AnyDatabase) -> None:
    t = Tasks(records_db)
    if t.shared:
        t.beat()  # a host on a shared database says it is alive, or its running tasks read "missing"
    task_id = t.create("work", session_id="s1")
    assert t.set_pid(task_id, 12345) == RUNNING
    t.save_state(task_id, '{"state":{"step":1},"objects":[]}')
    assert t.get(task_id)["state"] == {"step": 1}
    assert t.finish(task_id, COMPLETED, result=json.dumps({"response": 5, "objects": []}))
    assert not t.finish(task_id, KILLED)  # it ended already
    record = t.resolve(task_id[:6])
    assert (record["status"], record["result_wire"]["response"], record["session_id"]) == (COMPLETED, 5, "s1")
    assert [r["id"] for r in t.list_tasks()] == [task_id]
    with pytest.raises(TaskNotFound):
        t.resolve("ffffffffffffffff")


def test_outbox_keeps_messages_with_their_attachments(records_db: AnyDatabase, tmp_path: Path) -> None:
    app = AppDir(scaffold(tmp_path / "MailApp"))
    box = Outbox(app, records_db, config.Settings())
    first = box.send(
        to="a@example.org",
        subject="one",
        text="hello",
        attachments=[Attachment("application/octet-stream", b"\x00\xffbytes", "x.bin")],
    )
    second = box.send(to="b@example.org", subject="100% two")
    assert second.id > first.id
    assert [m["subject"] for m in box.list_messages()] == ["100% two", "one"]
    got = box.get_message(first.id)
    assert got is not None and got["attachments"][0]["content"] == b"\x00\xffbytes"
    assert box.clear_messages() == 2
    assert box.list_messages() == []


def test_a_shared_value_is_the_first_one_proposed(records_db: AnyDatabase) -> None:
    results: list[str] = []
    threads = [
        threading.Thread(target=lambda v=v: results.append(shared_value(records_db, "k", v)))
        for v in ("first", "second", "third")
    ]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert len(set(results)) == 1 and results[0] in ("first", "second", "third")
    assert shared_value(records_db, "k", "later") == results[0]


def test_media_made_on_one_host_is_found_by_another(postgres_url: str, tmp_path: Path) -> None:
    db = PostgresDatabase(postgres_url)
    here, there = MediaStore(tmp_path / "a", db), MediaStore(tmp_path / "b", db)
    media_id = here.put_bytes(b"made here")
    assert not (tmp_path / "b" / media_id).exists()
    assert there.path(media_id).read_bytes() == b"made here"
    assert not there.exists("unknownmediaid")


def test_sql_is_translated_in_one_place() -> None:
    assert (
        placeholders("SELECT * FROM t WHERE a = ? AND b LIKE '50%?' AND c = ?")
        == "SELECT * FROM t WHERE a = %s AND b LIKE '50%%?' AND c = %s"
    )
    assert postgres_ddl("CREATE TABLE x (id INTEGER PRIMARY KEY AUTOINCREMENT, t REAL, b BLOB, n INTEGER)") == (
        "CREATE TABLE x (id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, t DOUBLE PRECISION, b BYTEA, n BIGINT)"
    )


def test_a_database_that_cannot_be_reached_says_so() -> None:
    from anvil_dev.services.db import DatabaseError

    from helpers import free_port

    db = PostgresDatabase(f"postgresql://someone:hunter2@127.0.0.1:{free_port()}/nowhere")
    with pytest.raises(DatabaseError, match=r"cannot connect to the database postgresql://someone:\*\*\*@") as e:
        db.connection()
    assert "hunter2" not in str(e.value)


def test_on_a_shared_database_a_task_whose_host_stops_beating_is_reported_once(postgres_url: str) -> None:
    from anvil_dev.services import tasks as tasks_mod

    host_a, host_b, host_c = (Tasks(PostgresDatabase(postgres_url)) for _ in range(3))
    host_a.beat()
    task_id = host_a.create("work")
    assert host_b.get(task_id)["status"] == RUNNING
    host_a.leave()  # as if it died (a dead host stops beating; leaving is the same, sooner)
    claimed = [0, 0]

    def claim(i: int, t: Tasks) -> None:
        claimed[i] = t.mark_orphans_missing()

    both = [threading.Thread(target=claim, args=(0, host_b)), threading.Thread(target=claim, args=(1, host_c))]
    for th in both:
        th.start()
    for th in both:
        th.join()
    assert sorted(claimed) == [0, 1]  # one host reported it, the other skipped the locked row
    record = host_b.get(task_id)
    assert record["status"] == tasks_mod.MISSING and "stopped while this task was running" in record["error"]["message"]


def test_on_a_shared_database_each_scheduled_run_is_claimed_once(postgres_url: str) -> None:
    hosts = [Tasks(PostgresDatabase(postgres_url)) for _ in range(4)]
    wins: list[str] = []
    lock = threading.Lock()

    def claim(t: Tasks) -> None:
        for minute in range(10):
            won, _prev = t.claim_schedule("job|tick|{}", f"2030-01-01T00:{minute:02d}:00+00:00")
            if won:
                with lock:
                    wins.append(t.host_id)
                t.schedule_launched("job|tick|{}", f"2030-01-01T00:{minute:02d}:00+00:00", "task" + str(minute))

    threads = [threading.Thread(target=claim, args=(t,)) for t in hosts]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert len(wins) == 10
    assert hosts[0].claim_schedule("job|tick|{}", "2030-01-01T00:10:00+00:00") == (True, "task9")


def test_an_encryption_key_made_on_first_use_is_the_same_on_every_host(postgres_url: str, tmp_path: Path) -> None:
    from anvil_dev.services.secrets import Secrets

    app = scaffold(tmp_path / "KeyApp")
    (app / "anvil.yaml").write_text((app / "anvil.yaml").read_text() + "\nsecrets:\n  vault: {type: key}\n")
    one, two = (
        Secrets(AppDir(app, data_dir=tmp_path / name), config.Settings(), PostgresDatabase(postgres_url))
        for name in ("one", "two")
    )
    sealed = one.encrypt_with_key("vault", "for both hosts")
    assert two.decrypt_with_key("vault", sealed) == "for both hosts"
