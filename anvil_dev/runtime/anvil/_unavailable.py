"""Parts of Anvil that anvil-dev does not provide, but that apps import anyway.

Anvil's editor writes `import anvil.google.auth, anvil.google.drive, anvil.google.mail`,
`from anvil.google.drive import app_files`, `import anvil.files`, `from anvil.files import
data_files`, `import anvil.stripe` ... at the top of every module once the service is enabled,
whether the module uses it or not. Those imports must work, so that the rest of the app runs;
using one of these names raises an error that says what is missing.
"""

from __future__ import annotations

from typing import Any, NoReturn


class UnavailableService:
    """Stands for a name of a service anvil-dev does not run: any use of it raises NotImplementedError."""

    def __init__(self, name: str, service: str) -> None:
        object.__setattr__(self, "_name", name)
        object.__setattr__(self, "_service", service)

    def _refuse(self, what: str = "") -> NoReturn:
        raise NotImplementedError(
            f"{self._name}{what}: the {self._service} is not available under anvil-dev, only on Anvil "
            "(importing it works, so the rest of the app runs; code that uses it must be tried on Anvil)"
        )

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return UnavailableService(f"{self._name}.{name}", self._service)

    def __setattr__(self, name: str, value: Any) -> None:
        self._refuse(f".{name} = ...")

    def __call__(self, *args: Any, **kwargs: Any) -> NoReturn:
        self._refuse("()")

    def __getitem__(self, key: Any) -> NoReturn:
        self._refuse(f"[{key!r}]")

    def __iter__(self) -> NoReturn:
        self._refuse(" (iterating)")

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return f"<{self._name}: {self._service} not available under anvil-dev>"


def module_getattr(module: str, service: str) -> Any:
    """A module-level __getattr__ (PEP 562) that gives an UnavailableService for each public name."""

    def __getattr__(name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        return UnavailableService(f"{module}.{name}", service)

    return __getattr__
