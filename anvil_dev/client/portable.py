"""`PortableObject`: a value of a portable class the client has no class of its own for."""

from __future__ import annotations

import json
from typing import Any


class PortableObject:
    """An instance of a portable class this client has no class for."""

    type_name = ""

    def __init__(self, data: Any) -> None:
        self.data = data

    @classmethod
    def __new_deserialized__(cls, data: Any, info: Any) -> PortableObject:
        return cls(data)

    def __serialize__(self, info: Any) -> Any:
        return self.data

    def __getattr__(self, name: str) -> Any:
        data = self.__dict__.get("data")
        if isinstance(data, dict) and name in data:
            return data[name]
        raise AttributeError(name)

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.data == self.data

    def __hash__(self) -> int:
        return hash((self.type_name, json.dumps(self.data, sort_keys=True, default=str)))

    def __repr__(self) -> str:
        return f"<{self.type_name} {self.data!r}>"
