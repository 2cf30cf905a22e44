"""`anvil.designer` on the server: only `in_designer` (False) and `get_design_component` work, as on
Anvil (downlink/python/anvil/designer.py); the designer's functions belong to client code."""

from __future__ import annotations

from typing import Any

in_designer = False


def _client_only(name: str) -> Any:
    def refuse(*args: Any, **kws: Any) -> Any:
        raise Exception("You cannot use anvil.designer in server modules")

    refuse.__name__ = refuse.__qualname__ = name
    return refuse


get_design_name = _client_only("get_design_name")
update_component_properties = _client_only("update_component_properties")
update_component_sections = _client_only("update_component_sections")
start_editing_subform = _client_only("start_editing_subform")
start_editing_form = _client_only("start_editing_form")
register_interaction = _client_only("register_interaction")
notify_interactions_changed = _client_only("notify_interactions_changed")
request_form_property_change = _client_only("request_form_property_change")
start_inline_editing = _client_only("start_inline_editing")


def get_design_component(x: Any) -> Any:
    """Outside the designer a component is its own design component."""
    return x
