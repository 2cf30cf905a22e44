"""`anvil.files`: importable so that apps with the Data Files service enabled load; not provided by anvil-dev."""

from __future__ import annotations

from anvil._unavailable import module_getattr

__getattr__ = module_getattr("anvil.files", "Data Files service")
