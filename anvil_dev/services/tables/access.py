"""The store's face to clients, the host and the CLI: row MACs, sealed cursors, client access,
CSV and descriptions (a mixin of `TablesStore`)."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import TYPE_CHECKING, Any, TextIO

from anvil_dev.services.tables import export
from anvil_dev.services.tables import schema as schema_mod
from anvil_dev.services.tables.errors import TableError

if TYPE_CHECKING:
    from anvil_dev.appdir import AppDir
    from anvil_dev.services.tables.schema import TableInfo


class AccessMixin:
    if TYPE_CHECKING:
        secret_key: bytes
        app_dir: AppDir
        _hidden: dict[str, frozenset[str]] | None

        def table(self, name: str) -> TableInfo | None: ...

        def table_names(self) -> list[str]: ...

    def mac(self, kind: str, *parts: Any) -> str:
        msg = ":".join([kind, *map(str, parts)]).encode()
        return hmac.new(self.secret_key, msg, hashlib.sha256).hexdigest()[:32]

    def check_mac(self, given: Any, kind: str, *parts: Any) -> bool:
        # As bytes: compare_digest refuses str with non-ASCII characters (a TypeError, not a refusal).
        return isinstance(given, str) and hmac.compare_digest(
            given.encode("utf-8", "surrogatepass"), self.mac(kind, *parts).encode()
        )

    def hidden(self, table_name: str) -> frozenset[str]:
        """The table's `client_hidden` columns (anvil.yaml): client code never sees or names them."""
        if self._hidden is None:
            self._hidden = {
                t.name: frozenset(c.name for c in t.columns if c.client_hidden)
                for t in schema_mod.parse_db_schema(self.app_dir.config)
            }
        return self._hidden.get(table_name, frozenset())

    def seal(self, value: Any) -> str:
        """`value` (JSON) encrypted and authenticated with the app's secret key: what a client may
        hold but neither read nor change (a search's cursor carries server code's query values)."""
        return self._fernet().encrypt(json.dumps(value, default=str).encode()).decode()

    def unseal(self, token: Any) -> Any:
        """What seal() sealed, or None for anything else (altered, or from another app)."""
        from cryptography.fernet import InvalidToken

        if not isinstance(token, str):
            return None
        try:
            return json.loads(self._fernet().decrypt(token.encode()))
        except (InvalidToken, ValueError):
            return None

    def _fernet(self) -> Any:
        import base64

        from cryptography.fernet import Fernet

        key = hmac.new(self.secret_key, b"anvil-dev tables cursor", hashlib.sha256).digest()
        return Fernet(base64.urlsafe_b64encode(key))

    def client_access(self, table_name: str) -> str:
        """'none', 'search' or 'full': what client code may do with a table (anvil.yaml `client`)."""
        info = self.table(table_name)
        return info.client if info is not None else "none"

    def write_csv(
        self, table_id: int, out: TextIO, ids: list[int] | None = None, escape_for_excel: bool = False
    ) -> None:
        """Rows (these ids in this order, else all) as CSV: an ID column, then the table's columns."""
        export.write_csv(self, table_id, out, ids, escape_for_excel)  # type: ignore[arg-type]

    def export_csv(self, table_name: str, out: TextIO) -> None:
        """Write one table, by name, as CSV to a text stream; TableError naming the tables if none."""
        info = self.table(table_name)
        if info is None:
            names = ", ".join(self.table_names()) or "none"
            raise TableError(f"No table '{table_name}' in this app (tables: {names})")
        self.write_csv(info.id, out)

    def describe(self) -> list[dict[str, Any]]:
        """Each table: name, title, id, client/server access, columns (name, type, target), rows."""
        return export.describe(self)  # type: ignore[arg-type]
