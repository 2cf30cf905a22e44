"""The browser client (/_/anvil.js), the scaffold's Feedback Form and the dev console, in a real browser.

Playwright drives Debian's chromium (never a downloaded browser) against a real `anvil-dev serve`.
Screenshots go to tests/artifacts/ for people to look at.
"""

from __future__ import annotations

import re
import signal
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from helpers import ServerProcess, write_module

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
WAIT_MS = 15_000

EXTRA_MODULE = '''
import time
import anvil.server
from anvil.tables import app_tables

@anvil.server.callable
def slow(seconds=1.0):
    """Sleep, then answer."""
    time.sleep(seconds)
    return "slept"

@anvil.server.callable
def a_feedback_row(name):
    return app_tables.feedback.get(name=name)

@anvil.server.callable
def describe_row(row):
    return {"id": row.get_id(), "name": row["name"], "email": row["email"]}

@anvil.server.callable(require_user=True)
def my_notes(limit=10, *, newest_first=True):
    """The logged-in user's notes."""
    return []
'''


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh browser context (no cookies) and page; collects console messages and page errors."""
    context = browser.new_context(viewport={"width": 1360, "height": 860})
    context.set_default_timeout(WAIT_MS)
    pg = context.new_page()
    pg.console_messages = []
    pg.page_errors = []
    pg.on("console", lambda m: pg.console_messages.append(m.text))
    pg.on("pageerror", lambda e: pg.page_errors.append(str(e)))
    yield pg
    context.close()
    assert not pg.page_errors, f"JavaScript errors on the page: {pg.page_errors}"


@pytest.fixture
def extra_server(app_dir: Path, server_factory: Callable[..., ServerProcess]) -> ServerProcess:
    """The scaffolded app plus `slow(seconds)` and functions that return and take table rows."""
    write_module(app_dir, "Extra", EXTRA_MODULE)
    return server_factory(app_dir)


def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), animations="disabled")


def open_console(page: Any, server: ServerProcess) -> None:
    page.goto(server.url + "/_/console")
    page.wait_for_selector(".fn-card")
    page.wait_for_selector("#live[data-state=live]")


# ---- the Feedback Form ------------------------------------------------------------------------


def test_feedback_form_submits_and_says_thanks(server: ServerProcess, page: Any) -> None:
    page.goto(server.url + "/_/theme/index.html")
    page.fill("#name", "Ann Example")
    page.fill("#email", "ann@example.org")
    page.fill("#feedback", "Lovely little app.")
    shot(page, "feedback-form")
    page.click("text=Submit")
    page.wait_for_selector("text=Thanks!")
    shot(page, "feedback-form-thanks")
    assert page.url == server.url + "/_/theme/index.html"  # no page load: the call went through anvil.js
    stored = server.client().call("list_feedback")
    assert [(f["name"], f["feedback"]) for f in stored] == [("Ann Example", "Lovely little app.")]
    # What add_feedback print()ed reached the browser's console.
    assert any("Feedback from Ann Example" in m for m in page.console_messages), page.console_messages


def test_feedback_form_shows_the_server_error(server: ServerProcess, page: Any) -> None:
    page.goto(server.url + "/_/theme/index.html")
    page.click("text=Submit")
    error = page.wait_for_selector("#error:has-text('Please give your name and email')")
    assert error.is_visible()
    assert not page.is_visible("text=Thanks!")
    shot(page, "feedback-form-error")


# ---- anvil.js ------------------------------------------------------------------------------------


def test_server_errors_reject_with_anvil_type_message_and_trace(server: ServerProcess, page: Any) -> None:
    page.goto(server.url + "/")
    result = page.evaluate("""async () => {
        const out = {};
        for (const [key, call] of [["missing", () => anvil.server.call("no_such_function", 1)],
                                   ["raised", () => anvil.server.call("add_feedback", "", "", "")]]) {
            try { await call(); out[key] = "resolved"; }
            catch (e) { out[key] = {isError: e instanceof Error, type: e.type, message: e.message, trace: e.trace}; }
        }
        return out;
    }""")
    missing = result["missing"]
    assert missing["isError"] is True
    assert missing["type"] == "anvil.server.NoServerFunctionError"
    assert missing["message"] == 'No server function matching "no_such_function" has been registered'
    raised = result["raised"]
    assert raised["type"] == "ValueError"
    assert raised["message"] == "Please give your name and email"
    assert any(frame[0].endswith("ServerModule1.py") for frame in raised["trace"]), raised["trace"]


def test_portable_values_round_trip_through_the_browser(server: ServerProcess, page: Any) -> None:
    page.goto(server.url + "/")
    result = page.evaluate("""async () => {
        const v = await anvil.server.call("portable_types");
        const back = await anvil.server.call("echo", v);
        const moved = await anvil.server.call("move", v.point, 10, 20);
        const file = new File(["hello media"], "hello.txt", {type: "text/plain"});
        const media = await anvil.server.call("echo", file);
        const kw = await anvil.server.call("add", 1, anvil.server.kwargs({b: 2}));
        return {
            big: String(v.big), inf: v.inf, date: v.date.toString(), dt: v.datetime.toISOString(),
            point: [v.point.__type__, v.point.x, v.point.y], text: v.text,
            back: [String(back.big), back.date.toString(), back.datetime.getTime() === v.datetime.getTime(),
                   back.point.__type__, back.list],
            moved: [moved.__type__, moved.x, moved.y],
            media: [media instanceof Blob, media.name, media.type, await media.text()],
            kw,
        };
    }""")
    assert result["big"] == str(2**70)
    assert result["inf"] == float("inf")
    assert result["date"] == "2024-05-06"
    assert result["dt"] == "2024-01-02T03:04:05.123Z"
    assert result["point"][1:] == [1, 2] and result["point"][0].endswith("Shapes.Point")
    assert result["text"] == "héllo"
    assert result["back"] == [str(2**70), "2024-05-06", True, result["point"][0], [1, "two", [3]]]
    assert result["moved"] == [result["point"][0], 11, 22]
    assert result["media"] == [True, "hello.txt", "text/plain", "hello media"]
    assert result["kw"] == 3


def test_rows_arrive_with_readable_columns_and_go_back_as_live_rows(extra_server: ServerProcess, page: Any) -> None:
    extra_server.client().call("add_feedback", "Bo", "bo@example.org", "Hi")
    page.goto(extra_server.url + "/")
    result = page.evaluate("""async () => {
        const row = await anvil.server.call("a_feedback_row", "Bo");
        const seen = await anvil.server.call("describe_row", row);
        return {isRow: row instanceof anvil.Row, name: row.name, email: row["email"], columns: Object.keys(row),
                created: row.created instanceof Date, id: row.getId(), seen};
    }""")
    assert result["isRow"] is True
    assert (result["name"], result["email"], result["created"]) == ("Bo", "bo@example.org", True)
    assert result["columns"] == ["name", "email", "feedback", "created"]
    assert re.fullmatch(r"\[\d+,\d+\]", result["id"])
    assert result["seen"] == {"id": result["id"], "name": "Bo", "email": "bo@example.org"}


SPINNER_SEEN = """async ([fn, seconds]) => {
    let seen = false;
    const timer = setInterval(() => {
        const el = document.getElementById("anvil-loading");
        if (el && !el.hidden && getComputedStyle(el).display !== "none") seen = true;
    }, 10);
    const run = {
        call: () => anvil.server.call("slow", seconds),
        call_s: () => anvil.server.call_s("slow", seconds),
        scope: () => anvil.server.noLoadingIndicator(() => anvil.server.call("slow", seconds)),
    }[fn];
    const answer = await run();
    clearInterval(timer);
    const el = document.getElementById("anvil-loading");
    return {answer, seen, visibleAfter: !!el && !el.hidden};
}"""


def test_spinner_shows_during_a_slow_call_but_not_for_call_s(extra_server: ServerProcess, page: Any) -> None:
    page.goto(extra_server.url + "/")
    # Once the app's Form is shown: while the page still starts its client code, the main thread is
    # busy, and on a loaded machine the spinner's show and hide can fall between two of its frames.
    page.wait_for_selector("body[data-anvil-ready='1']", timeout=30_000)
    page.evaluate("() => { window.pending = anvil.server.call('slow', 1.5); }")
    page.wait_for_selector("#anvil-loading", state="visible")
    shot(page, "spinner")
    assert page.evaluate("window.pending") == "slept"
    page.wait_for_selector("#anvil-loading", state="hidden")

    assert page.evaluate(SPINNER_SEEN, ["call", 0.8]) == {"answer": "slept", "seen": True, "visibleAfter": False}
    assert page.evaluate(SPINNER_SEEN, ["call_s", 0.8]) == {"answer": "slept", "seen": False, "visibleAfter": False}
    assert page.evaluate(SPINNER_SEEN, ["scope", 0.8]) == {"answer": "slept", "seen": False, "visibleAfter": False}


# ---- the dev console -----------------------------------------------------------------------------


def test_console_lists_functions_calls_one_and_logs_calls_live(extra_server: ServerProcess, page: Any) -> None:
    server = extra_server
    open_console(page, server)
    notes = page.locator(".fn-card[data-name=my_notes]")
    assert notes.locator(".fn-sig").inner_text() == "(limit=10, *, newest_first=True)"
    assert notes.locator(".badge").inner_text() == "login required"
    assert notes.locator(".fn-doc").inner_text() == "The logged-in user's notes."
    add = page.locator(".fn-card[data-name=add]")
    assert add.locator(".fn-sig").inner_text() == "(a, b)"
    assert "Add two numbers." in add.inner_text()
    for name in ("add_feedback", "echo", "portable_types", "move"):
        assert page.locator(f".fn-card[data-name={name}]").count() == 1

    add.locator(".card-head").click()
    add.locator("input[data-name=a]").fill("2")
    add.locator("input[data-name=b]").fill("40")
    add.locator("button.call").click()
    result = add.locator(".result-ok .value")
    result.wait_for()
    assert result.inner_text() == "42"
    page.locator(".log-item[data-kind=call] .log-fn", has_text=re.compile(r"^add$")).first.wait_for()

    # A call from elsewhere (the Python client) shows up without a reload.
    server.client().call("echo", "from python")
    page.locator(".log-item[data-kind=call] .log-fn", has_text="echo").wait_for()

    # An error shows its type and message, in the form and in the log.
    feedback = page.locator(".fn-card[data-name=add_feedback]")
    feedback.locator(".card-head").click()
    feedback.locator("button.call").click()
    error = feedback.locator(".result-error .error-line")
    error.wait_for()
    assert "TypeError" in error.inner_text()
    page.locator(".log-item[data-kind=call-error]", has_text="add_feedback").wait_for()

    portable = page.locator(".fn-card[data-name=portable_types]")
    portable.locator(".card-head").click()
    portable.locator("button.call").click()
    portable.locator(".result-ok").wait_for()
    assert "datetime 2024-01-02" in portable.locator(".value").inner_text()
    # Fold the others away so the screenshot shows the list, a rich result and the log.
    add.locator(".card-head").click()
    feedback.locator(".card-head").click()
    assert add.locator("button.call").is_hidden()
    portable.locator(".result").scroll_into_view_if_needed()
    page.mouse.move(0, 0)
    shot(page, "console")


def test_console_shows_a_syntax_error_until_it_is_fixed(server: ServerProcess, page: Any) -> None:
    open_console(page, server)
    assert page.locator("#syntax-banner").is_hidden()
    broken = write_module(server.app_dir, "Broken", "import anvil.server\n\n\ndef oops(:\n    pass\n")
    banner = page.locator("#syntax-banner")
    banner.wait_for(state="visible")
    assert "server_code/Broken.py line 4" in banner.inner_text()
    page.locator(".log-item[data-kind=syntax-error]").wait_for()
    shot(page, "console-syntax-error")

    broken.write_text("import anvil.server\n\n\n@anvil.server.callable\ndef oops():\n    return 'fixed'\n")
    banner.wait_for(state="hidden")
    page.locator(".fn-card[data-name=oops]").wait_for()  # the new function is listed, no reload needed
    page.locator(".log-item[data-kind=reload]", has_text="Broken.py").first.wait_for()


def test_console_is_served_at_root_when_the_app_has_no_page(
    app_dir: Path, server_factory: Callable[..., ServerProcess], page: Any
) -> None:
    (app_dir / "theme" / "assets" / "index.html").unlink()
    yaml_path = app_dir / "anvil.yaml"
    yaml_path.write_text(yaml_path.read_text().replace("startup_form: Form1\n", ""))
    server = server_factory(app_dir)
    page.goto(server.url + "/")
    page.wait_for_selector(".fn-card[data-name=add_feedback]")
    assert "anvil-dev console" in page.title()


def test_console_refuses_other_host_names(server: ServerProcess) -> None:
    # A page on another site whose name resolves to 127.0.0.1 (DNS rebinding) must not read it.
    request = urllib.request.Request(server.url + "/_/console/api/status", headers={"Host": "evil.example"})
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(request, timeout=10)
    assert e.value.code == 403
    with urllib.request.urlopen(server.url + "/_/console/api/status", timeout=10) as ok:
        assert ok.status == 200


def test_an_open_console_does_not_hold_up_server_shutdown(server: ServerProcess, page: Any) -> None:
    open_console(page, server)
    started = time.monotonic()
    server.proc.send_signal(signal.SIGTERM)
    server.proc.wait(timeout=20)
    assert time.monotonic() - started < 8, "serve took too long to stop while a console was streaming events"
    page.locator("#live[data-state=down]").wait_for()  # and the console says it lost the server


MAIL_MODULE = """
import anvil.email
import anvil.server

@anvil.server.callable
def send_welcome(email):
    anvil.email.send(to=email, subject="Welcome aboard", text="Hello, and welcome.",
                     html="<h1>Hello</h1><p>Welcome aboard.</p>")
"""


def test_console_browses_tables_and_the_email_outbox(
    app_dir: Path, server_factory: Callable[..., ServerProcess], page: Any
) -> None:
    write_module(app_dir, "Mail", MAIL_MODULE)
    server = server_factory(app_dir)
    client = server.client()
    for name in ("Ann", "Bob", "Cy"):
        client.call("add_feedback", name, f"{name.lower()}@example.org", f"Notes from {name}")
    client.call("send_welcome", "ann@example.org")
    open_console(page, server)

    page.click("#tabs [data-tab=tables]")
    page.locator("#table-list .side-item", has_text="feedback").wait_for()
    page.locator("#rows tbody tr").nth(2).wait_for()
    assert page.locator("#rows tbody tr").count() == 3
    page.fill("#row-search", "bob")
    page.locator("#row-info", has_text="of 1").wait_for()
    assert "bob@example.org" in page.locator("#rows tbody").inner_text()
    shot(page, "console-tables")

    page.click("#tabs [data-tab=outbox]")
    page.locator("#outbox-list .side-item", has_text="Welcome aboard").click()
    page.frame_locator("#outbox-message iframe").locator("h1", has_text="Hello").wait_for()
    shown = page.locator("#outbox-message").inner_text()
    assert "ann@example.org" in shown and "null" not in shown
    shot(page, "console-outbox")


def test_users_sign_up_log_in_and_out_from_the_page(server: ServerProcess, page: Any) -> None:
    page.goto(server.url + "/")
    result = page.evaluate("""async () => {
        const out = {};
        const user = await anvil.users.signupWithEmail("pat@example.org", "a long enough password");
        out.signup = [user instanceof anvil.Row, user.email];
        out.current = (await anvil.users.getUser()).email;
        await anvil.users.logout();
        out.afterLogout = await anvil.users.getUser();
        try { await anvil.users.loginWithEmail("pat@example.org", "wrong password"); out.wrong = "logged in"; }
        catch (e) { out.wrong = e.type; }
        out.login = (await anvil.users.loginWithEmail("pat@example.org", "a long enough password")).email;
        out.again = (await anvil.users.getUser()).email;
        return out;
    }""")
    assert result == {
        "signup": [True, "pat@example.org"],
        "current": "pat@example.org",
        "afterLogout": None,
        "wrong": "anvil.users.AuthenticationFailed",
        "login": "pat@example.org",
        "again": "pat@example.org",
    }


TASK_MODULE = """
import time
import anvil.server

@anvil.server.background_task
def crunch(n):
    anvil.server.task_state["done"] = 0
    for i in range(n):
        anvil.server.task_state["done"] = i + 1
        time.sleep(0.5)

@anvil.server.callable
def start_crunch(n):
    return anvil.server.launch_background_task("crunch", n).get_id()
"""


def test_console_lists_background_tasks_and_kills_one(
    app_dir: Path, server_factory: Callable[..., ServerProcess], page: Any
) -> None:
    write_module(app_dir, "Tasks", TASK_MODULE)
    server = server_factory(app_dir)
    task_id = server.client().call("start_crunch", 600)
    open_console(page, server)
    page.click("#tabs [data-tab=tasks]")
    row = page.locator("#tasks tbody tr", has_text="crunch")
    row.locator(".pill-running").wait_for()
    row.locator("td", has_text=re.compile(r'"done":([3-9]|\d\d)')).wait_for()  # task_state updates by itself
    shot(page, "console-tasks")
    row.locator("button", has_text="Kill").click()
    row.locator(".pill-killed").wait_for()
    page.locator(".log-item[data-kind=task]", has_text=task_id[:8]).wait_for()


def test_console_logs_in_to_call_functions_that_need_a_user(extra_server: ServerProcess, page: Any) -> None:
    extra_server.client().call("anvil.private.users.signup_with_email", "lee@example.org", "a long enough password")
    open_console(page, extra_server)
    page.locator("#me-text", has_text="Not logged in").wait_for()
    notes = page.locator(".fn-card[data-name=my_notes]")
    notes.locator(".card-head").click()
    notes.locator("button.call").click()
    notes.locator(".result-error .error-line", has_text="AuthenticationFailed").wait_for()

    page.click("#me-action")
    page.fill("#login-email", "lee@example.org")
    page.fill("#login-password", "a long enough password")
    shot(page, "console-login")
    page.click("#login-form button[type=submit]")
    page.locator("#me-text", has_text="Logged in as lee@example.org").wait_for()
    notes.locator("button.call").click()
    notes.locator(".result-ok .value", has_text="[]").wait_for()
