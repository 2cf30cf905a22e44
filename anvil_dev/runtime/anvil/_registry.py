"""The wire registry of this process: portable classes, Media, and Anvil's SerializationError."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from anvil._errors import MaybeWrappedError
from anvil_dev import wire

if TYPE_CHECKING:
    from anvil_dev.services.mediastore import MediaStore


class SerializationError(MaybeWrappedError):
    pass


SerializationError.__module__ = "anvil.server"


class RuntimeRegistry(wire.TypeRegistry):
    error_class = SerializationError

    def lookup(self, name: str, may_import: bool = True) -> type | None:
        cls = self.classes.get(name)
        module = name.rsplit(".", 1)[0]
        if cls is None and "." in name and (may_import or module == "anvil" or module.startswith("anvil.")):
            # Anvil imports the module a type name points into, then looks again: only for a
            # trusted sender (this app's own code). A client's name resolves only to a class the
            # app has registered (its server modules, imported before any call) or to one of the
            # classes of this runtime's own anvil package.
            try:
                importlib.import_module(module)
            except Exception:  # noqa: BLE001 - a name whose module fails to import is simply unknown
                return None
            cls = self.classes.get(name)
        return cls

    def make_tz(self, offset: Any) -> Any:
        from anvil.tz import tzoffset

        return tzoffset(seconds=offset.total_seconds())

    def encode_other(self, obj: Any, path: list[Any]) -> dict[str, Any] | None:
        from anvil import FileMedia, Media

        if not isinstance(obj, Media):
            return None
        store = _media_store()
        media_id = getattr(obj, "media_id", None)
        if not (isinstance(obj, FileMedia) and media_id and store.exists(media_id)):
            if isinstance(obj, FileMedia):
                with open(obj.path, "rb") as f:
                    media_id, _ = store.put_stream(f)
            else:
                media_id = store.put_bytes(obj.get_bytes())
        return {
            "type": ["DataMedia"],
            "id": media_id,
            "mime-type": obj.content_type or "application/octet-stream",
            "name": obj.name,
        }

    def decode_other(self, entry: dict[str, Any], path: list[Any]) -> Any:
        from anvil import FileMedia

        kind = entry.get("type")
        if isinstance(kind, list) and kind and kind[0] == "DataMedia":
            try:
                p = _media_store().path(entry.get("id", ""))
            except ValueError as e:
                raise self.error_class(f"{e} at {wire.format_path(path)}") from None
            if not p.is_file():
                raise self.error_class(f"Media {entry.get('id')!r} is missing (expired?) at {wire.format_path(path)}")
            return FileMedia(p, entry.get("mime-type"), entry.get("name"), media_id=entry.get("id"))
        return super().decode_other(entry, path)


def _media_store() -> MediaStore:
    from anvil_dev import services

    return services.current().media


REGISTRY = RuntimeRegistry()
