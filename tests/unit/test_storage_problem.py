"""What a write that failed on a full or read-only disk tells the user (services/db.py)."""

from __future__ import annotations

import errno
import sqlite3

from anvil_dev.services.db import storage_problem


def test_full_and_read_only_disks_are_named_with_what_to_do() -> None:
    full = storage_problem(sqlite3.OperationalError("database or disk is full"), "/apps/A/.anvil-dev")
    assert full is not None and "the disk holding /apps/A/.anvil-dev is full" in full and "free some space" in full
    ro = storage_problem(sqlite3.OperationalError("attempt to write a readonly database"), "/apps/A/.anvil-dev")
    assert ro is not None and "/apps/A/.anvil-dev is read-only" in ro
    assert "is full" in (storage_problem(OSError(errno.ENOSPC, "No space left on device"), "/d") or "")
    assert "read-only" in (storage_problem(OSError(errno.EROFS, "Read-only file system"), "/d") or "")


def test_other_errors_are_not_storage_problems() -> None:
    assert storage_problem(sqlite3.OperationalError("no such table: x"), "/d") is None
    assert storage_problem(OSError(errno.ENOENT, "missing"), "/d") is None
    assert storage_problem(ValueError("disk is full"), "/d") is None
