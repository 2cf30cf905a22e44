"""`anvil.stripe`: importable so that apps with the Stripe service enabled load; not provided by anvil-dev."""

from __future__ import annotations

from anvil._unavailable import module_getattr

__getattr__ = module_getattr("anvil.stripe", "Stripe service")
