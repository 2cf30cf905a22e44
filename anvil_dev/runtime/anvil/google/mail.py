"""`anvil.google.mail`: importable so that apps with the Google API service enabled load; not provided by anvil-dev."""

from __future__ import annotations

from anvil._unavailable import module_getattr

__getattr__ = module_getattr("anvil.google.mail", "Google API service")
