from ._anvil_designer import TodoListTemplate
from anvil import *
import anvil.server
from anvil_extras import routing

from ..model.portable import Todo


@routing.route("")
class TodoList(TodoListTemplate):
  def __init__(self, **properties):
    self.init_components(**properties)
    self.repeating_panel_1.items = anvil.server.call("todos.sync", {"new": [], "deleted": []})

  def add_click(self, **event_args):
    anvil.server.call("todos.sync", {"new": [Todo(self.text_box_1.text)], "deleted": []})
