"""The Users service underneath `anvil.users`: its settings, password hashes, lockout, and CLI helpers.

Plain Python, no `anvil` imports. The runtime's `anvil.users` keeps users in the app's users data
table (through `anvil.tables`); this module holds what must not live in user code's reach:

- password hashes: bcrypt, as Anvil's ("$2a$", 10 rounds, jBCrypt's format: users tables move
  between Anvil and anvil-dev both ways); scrypt hashes written by older anvil-dev still verify, and
  `needs_rehash` says to replace them at the next login;
- lockout: after `max_password_failures` wrong passwords in a row (10, as on Anvil) an account is
  locked for `Settings.lockout_seconds` (5 minutes; Anvil locks until a password reset, which a
  local server cannot email). The count lives in the table `anvil_users_failures`, and is mirrored to
  the users table's `n_password_failures` column when it has one;
- `add_user` / `list_users` for `anvil-dev users add|list` and the console, which run in the host
  (where `anvil` is never imported) and so work on the tables store directly.

Password hashing and checks are pure functions; the rest is `Users`, bound to a context
(`services.current().users`).
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import hashlib
import hmac
import time
from typing import TYPE_CHECKING, Any

import bcrypt

from anvil_dev.appdir import AppDir
from anvil_dev.config import Settings
from anvil_dev.services.db import AnyDatabase, ensure_schema

if TYPE_CHECKING:
    from anvil_dev.services.tables import TablesStore

USERS_SERVICE = "/runtime/services/anvil/users.yml"
DEFAULT_USER_TABLE = "users"
MAX_PASSWORD_FAILURES = 10
MIN_SECURE_LENGTH = 8
# Columns of the users table that never leave the server (the console and client rows skip them).
SECRET_COLUMNS = frozenset({"password_hash", "email_confirmation_key", "remembered_logins", "mfa"})

# Anvil's defaults for the service's options (anvil.yaml client_config and server_config).
DEFAULTS: dict[str, Any] = {
    "allow_signup": True,
    "enable_automatically": True,
    "use_email": True,
    "confirm_email": False,
    "require_secure_passwords": False,
    "allow_remember_me": True,
    "remember_me_days": 30,
    "share_login_status": False,
    "require_mfa": False,
    "use_token": False,
    "user_table": DEFAULT_USER_TABLE,
    "max_password_failures": MAX_PASSWORD_FAILURES,
}

_SCRYPT = {"n": 2**14, "r": 8, "p": 1}
_SCRYPT_MAXMEM = 64 << 20
# The most common leaked passwords: refused when require_secure_passwords is on (Anvil asks
# haveibeenpwned; a local server must work offline).
_COMMON_PASSWORDS = frozenset(
    """
123456 1234567 12345678 123456789 1234567890 12345678910 password password1 password123 passw0rd
qwerty qwerty123 qwertyuiop 11111111 00000000 iloveyou abc12345 abcd1234 1q2w3e4r 1qaz2wsx
sunshine princess football baseball welcome welcome1 letmein1 trustno1 superman dragon123
monkey123 starwars 87654321 asdfghjk asdfghjkl zxcvbnm123 admin123 administrator changeme
""".split()
)

# The columns the service writes, with their types: created in the users table when it lacks them,
# as Anvil's Users service does (users/util.clj lines 97-120 and v2/util.clj lines 241-306: on a
# NoSuchColumnError it calls ensure-columns-exist! for the values it writes, then retries), whatever
# the tables service's auto_create_missing_columns says.
SERVICE_COLUMNS: dict[str, str] = {
    "email": "string",
    "enabled": "bool",
    "signed_up": "datetime",
    "last_login": "datetime",
    "password_hash": "string",
    "n_password_failures": "number",
    "confirmed_email": "bool",
    "email_confirmation_key": "string",
    "remembered_logins": "simpleObject",
    "mfa": "simpleObject",
}
# anvil-dev's own: `users add --admin` sets it (not an Anvil column, created the same way).
CLI_COLUMNS: dict[str, str] = {"admin": "bool"}

FAILURES_SCHEMA = """
CREATE TABLE IF NOT EXISTS anvil_users_failures (
    user_id TEXT PRIMARY KEY,
    failures INTEGER NOT NULL DEFAULT 0,
    locked_until REAL NOT NULL DEFAULT 0
);
"""


class UsersError(Exception):
    """A users operation failed; `kind` is the short name of Anvil's exception (e.g. "UserExists")."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


# ------------------------------------------------------------------------------ settings


@contextlib.contextmanager
def _write(conn: Any) -> Any:
    """A write on the tables' connection: a savepoint inside the transaction already open (a
    signup's), else a transaction of its own."""
    if conn.in_transaction:
        conn.execute("SAVEPOINT anvil_users_columns")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK TO anvil_users_columns")
            conn.execute("RELEASE anvil_users_columns")
            raise
        conn.execute("RELEASE anvil_users_columns")
        return
    from anvil_dev.services.tables import dialect

    conn.execute(dialect.of(conn).begin_write)
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def service_options(app_dir: AppDir) -> dict[str, Any] | None:
    """The Users service options of anvil.yaml (client_config + server_config over Anvil's defaults),
    or None when the app has no Users service."""
    svc = app_dir.service_config(USERS_SERVICE)
    if svc is None:
        return None
    out = dict(DEFAULTS)
    for part in ("client_config", "server_config"):
        cfg = svc.get(part)
        if isinstance(cfg, dict):
            out.update({k: v for k, v in cfg.items() if v is not None})
    return out


def normalise_email(email: Any) -> str:
    """Emails are kept trimmed and lower-cased, as Anvil signs them up."""
    if not isinstance(email, str):
        raise UsersError("AuthenticationFailed", "Please provide an email address.")
    return email.strip().lower()


# ------------------------------------------------------------------------------ passwords


_BCRYPT_ROUNDS = 10  # jBCrypt's gensalt() default, which Anvil uses (users/core.clj line 490)
# A hash to check against when there is none, so that an unknown email costs a real check's time.
_DUMMY_HASH = b"$2a$10$" + b"." * 53


def _bcrypt_bytes(password: str) -> bytes:
    # bcrypt reads at most 72 bytes; jBCrypt ignores the rest, the Python library refuses them.
    return password.encode("utf-8")[:72]


def hash_password(password: str) -> str:
    """A bcrypt hash as Anvil writes it: "$2a$10$..." (jBCrypt 0.4 reads only the $2a$ revision)."""
    salt = bcrypt.gensalt(rounds=_BCRYPT_ROUNDS, prefix=b"2a")
    return bcrypt.hashpw(_bcrypt_bytes(password), salt).decode("ascii")


def needs_rehash(stored: Any) -> bool:
    """True for a hash anvil-dev wrote before it used bcrypt (scrypt): replace it at the next login."""
    return isinstance(stored, str) and stored.startswith("scrypt$")


def check_password(password: Any, stored: Any) -> bool:
    """True when `password` matches `stored` (bcrypt $2a$/$2b$/$2y$, or an older anvil-dev scrypt hash).

    With nothing to check against it still spends the time a real check takes, so a wrong email
    cannot be told from a wrong password by how long the answer takes.
    """
    if not isinstance(password, str):
        password = ""
    if needs_rehash(stored):
        return _check_scrypt(password, stored)
    text = str(stored) if isinstance(stored, str) else ""
    if text[:4] in ("$2a$", "$2b$", "$2y$"):
        try:
            # $2y$ is PHP's name for the same algorithm.
            return bcrypt.checkpw(_bcrypt_bytes(password), text.replace("$2y$", "$2b$", 1).encode("ascii"))
        except (ValueError, UnicodeEncodeError):
            return False
    try:
        bcrypt.checkpw(_bcrypt_bytes(password), _DUMMY_HASH)
    except ValueError:
        pass
    return False


def _check_scrypt(password: str, stored: str) -> bool:
    try:
        kind, n, r, p, salt_b64, hash_b64 = stored.split("$")
        salt, want = base64.b64decode(salt_b64), base64.b64decode(hash_b64)
        params = {"n": int(n), "r": int(r), "p": int(p)}
    except (ValueError, TypeError):
        return False
    got = hashlib.scrypt(password.encode("utf-8"), salt=salt, maxmem=_SCRYPT_MAXMEM, dklen=len(want), **params)
    return hmac.compare_digest(got, want)


def password_problem(password: Any, secure: bool) -> str | None:
    """Why a new password is refused (Anvil's PasswordNotAcceptable messages), or None."""
    if not isinstance(password, str) or not password:
        return "Please provide a password."
    if secure and len(password) < MIN_SECURE_LENGTH:
        return "Passwords must be 8 characters or more"
    if secure and password.lower() in _COMMON_PASSWORDS:
        return "This password is not safe to use: It has previously been leaked and posted on the internet."
    return None


# ------------------------------------------------------------------------------ the service


class Users:
    """The Users service of one app (`services.current().users`): its options, lockout, and the
    host's add/list over the users table."""

    def __init__(self, app_dir: AppDir, db: AnyDatabase, settings: Settings, tables: TablesStore) -> None:
        self.app_dir = app_dir
        self.db = db
        self.settings = settings
        self.tables = tables

    def options(self) -> dict[str, Any] | None:
        """The service's anvil.yaml options over Anvil's defaults, or None when the app has no Users service."""
        return service_options(self.app_dir)

    @property
    def lockout_seconds(self) -> float:
        return self.settings.lockout_seconds

    # ---------------------------------------------------------------------- lockout

    def _failures_db(self) -> AnyDatabase:
        ensure_schema(self.db, "users_failures", FAILURES_SCHEMA)
        return self.db

    def locked_for(self, user_id: str) -> float:
        """Seconds until a locked account may try again (0 when it is not locked)."""
        row = (
            self._failures_db()
            .connection()
            .execute("SELECT locked_until FROM anvil_users_failures WHERE user_id = ?", (user_id,))
            .fetchone()
        )
        return max(0.0, row[0] - time.time()) if row else 0.0

    def claim_attempt(self, user_id: str, max_failures: int) -> int:
        """Count one password attempt before its password is checked; returns its number in the
        count, or 0 when the account is locked (refuse it without checking).

        One write transaction, so simultaneous attempts each get their own number: however many
        arrive at once, at most `max_failures` passwords are checked before the account locks.
        Attempts refused while locked still count: `accept_password` looks at that to refuse a
        right password that came inside a burst past the limit.
        """
        now = time.time()
        with self._failures_db().write() as conn:
            row = conn.execute(
                "SELECT failures, locked_until FROM anvil_users_failures WHERE user_id = ?", (user_id,)
            ).fetchone()
            expired = row is not None and row[1] and row[1] <= now
            failures = 0 if row is None or expired else row[0]
            locked_until = 0.0 if row is None or expired else row[1]
            failures += 1
            if not locked_until and failures >= max_failures:
                locked_until = now + self.lockout_seconds
            conn.execute(
                "INSERT INTO anvil_users_failures (user_id, failures, locked_until) VALUES (?, ?, ?) "
                "ON CONFLICT (user_id) DO UPDATE SET failures = excluded.failures, "
                "locked_until = excluded.locked_until",
                (user_id, failures, locked_until),
            )
        return 0 if failures > max_failures else failures

    def accept_password(self, user_id: str, attempt: int, max_failures: int) -> bool:
        """A right password was given on attempt number `attempt`: clear the count and return True,
        unless attempts after it reached the limit (a burst it came inside): then False."""
        with self._failures_db().write() as conn:
            row = conn.execute(
                "SELECT failures, locked_until FROM anvil_users_failures WHERE user_id = ?", (user_id,)
            ).fetchone()
            if row is not None and row[1] > time.time() and row[0] >= max_failures and row[0] > attempt:
                return False
            conn.execute("DELETE FROM anvil_users_failures WHERE user_id = ?", (user_id,))
        return True

    def record_failure(self, user_id: str, max_failures: int) -> int:
        """Count one wrong password; at `max_failures` the account locks. Returns the count so far."""
        return self.claim_attempt(user_id, max_failures) or max_failures

    def clear_failures(self, user_id: str) -> None:
        with self._failures_db().write() as conn:
            conn.execute("DELETE FROM anvil_users_failures WHERE user_id = ?", (user_id,))

    # ---------------------------------------------------------------------- the users table's columns

    def ensure_columns(self, table_id: int, names: Any, extra: dict[str, str] | None = None) -> list[str]:
        """Create those of `names` that the service writes (SERVICE_COLUMNS, and `extra`) and the
        users table lacks; returns the names created. Other names are left alone (writing them
        fails with the tables' own NoSuchColumnError)."""
        from anvil_dev.services.tables import schema as tables_schema

        known = {**SERVICE_COLUMNS, **(extra or {})}
        info = self.tables.table_by_id(table_id)
        missing = [n for n in dict.fromkeys(names) if n in known and n not in info.columns]
        if not missing:
            return []
        conn = self.tables.conn()
        with _write(conn):
            have = {
                r[0] for r in conn.execute("SELECT name FROM anvil_columns WHERE table_id=? AND visible=1", (table_id,))
            }
            missing = [n for n in missing if n not in have]
            for name in missing:
                tables_schema.add_column(conn, table_id, name, known[name], None, "auto")
        return missing

    # ---------------------------------------------------------------------- host side (CLI, console)

    def user_table(self) -> tuple[int, str]:
        """The users table's id and name (for callers that read it through anvil.tables, such as the pytest
        plugin's as_user); UsersError saying what to add when there is none."""
        opts = self.options()
        if opts is None:
            raise UsersError(
                "ServiceNotAdded",
                f"{self.app_dir.yaml_path} has no Users service: add `- source: {USERS_SERVICE}` under services:",
            )
        name = opts["user_table"]
        info = self.tables.table_by_id(name) if isinstance(name, int) else self.tables.table(str(name))
        if info is None:
            raise UsersError(
                "TableError",
                f"The users table '{name}' does not exist: add it to db_schema in "
                "anvil.yaml (or set the Users service's server_config user_table)",
            )
        return info.id, info.name

    def _find(self, table_id: int, email: str) -> tuple[int, dict[str, Any]] | None:
        for candidate in dict.fromkeys([email.strip().lower(), email.strip()]):
            rows = self.tables.select(table_id, self.tables.compile(table_id, (), {"email": candidate}), limit=1)
            if rows:
                return rows[0]
        return None

    def add_user(self, email: str, password: str | None = None, admin: bool = False) -> dict[str, Any]:
        """Create a user who can log in at once (enabled, email confirmed), or update an existing one:
        enable and confirm them, set the password when given, and make them an admin with `admin`.

        Returns {"email", "id", "created"}. Raises UsersError with a message for the command line.
        """
        from anvil_dev.services.tables import NoSuchColumnError

        email = normalise_email(email)
        if "@" not in email:
            raise UsersError("AuthenticationFailed", f"{email!r} is not an email address")
        values: dict[str, Any] = {"enabled": True, "confirmed_email": True}
        if password is not None:
            problem = password_problem(password, bool((self.options() or {}).get("require_secure_passwords")))
            if problem:
                raise UsersError("PasswordNotAcceptable", problem)
            values["password_hash"] = hash_password(password)
        if admin:
            values["admin"] = True
        table_id, table_name = self.user_table()
        self.ensure_columns(table_id, ["email", "signed_up", *values], CLI_COLUMNS)
        try:
            found = self._find(table_id, email)
            if found is None:
                values.update(email=email, signed_up=datetime.datetime.now(datetime.timezone.utc))
                row_id, _ = self.tables.add_row(table_id, values)
                created = True
            else:
                row_id = found[0]
                self.tables.update_row(table_id, row_id, values)
                created = False
        except NoSuchColumnError as e:
            raise UsersError(
                "NoSuchColumnError", f"{e} (add the column to the {table_name} table in anvil.yaml)"
            ) from None
        user_id = f"[{table_id},{row_id}]"
        if password is not None:
            self.clear_failures(user_id)
        return {"email": email, "id": user_id, "created": created}

    def list_users(self, limit: int = 1000) -> list[dict[str, Any]]:
        """The app's users, oldest first, without their secrets: id, email and the other columns."""
        table_id, _ = self.user_table()
        rows = self.tables.select(table_id, self.tables.compile(table_id, (), {}), limit=limit)
        out = []
        for row_id, data in rows:
            user: dict[str, Any] = {"id": f"[{table_id},{row_id}]", "email": data.get("email")}
            user.update((k, v) for k, v in data.items() if k not in SECRET_COLUMNS and k != "email")
            user["has_password"] = bool(data.get("password_hash"))
            out.append(user)
        return out
