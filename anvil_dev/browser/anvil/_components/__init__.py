"""Anvil's components, with Anvil's property names and defaults, over the page's DOM.

One module per family; every component is also a name here (and on `anvil`), as client code and
form templates name them (`anvil.Button`, `type: Button`)."""

from anvil._components.base import Component, ComponentTag, Container, is_builtin  # noqa: F401
from anvil._components.inputs import (  # noqa: F401
    CheckBox, DatePicker, DropDown, FileLoader, RadioButton, TextArea, TextBox,
)
from anvil._components.media import Canvas, Image, Timer  # noqa: F401
from anvil._components.panels import (  # noqa: F401
    ColumnPanel, FlowPanel, GridPanel, HtmlPanel, HtmlTemplate, LinearPanel, XYPanel,
)
from anvil._components.plot import Plot  # noqa: F401
from anvil._components.repeating import DataGrid, DataRowPanel, RepeatingPanel  # noqa: F401
from anvil._components.text import Button, Label, Link, RichText, Spacer  # noqa: F401
