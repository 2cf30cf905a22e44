"""`anvil.google.sheets`: importable, as apps with the Google API service import it everywhere;
anvil-dev does not provide the service, so using a name from it raises NotImplementedError."""

from __future__ import annotations

from anvil._unavailable import module_getattr

__getattr__ = module_getattr("anvil.google.sheets", "Google API service")
