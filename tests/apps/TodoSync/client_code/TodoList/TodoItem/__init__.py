from ._anvil_designer import TodoItemTemplate
from anvil import *


class TodoItem(TodoItemTemplate):
  def __init__(self, **properties):
    self.init_components(**properties)
