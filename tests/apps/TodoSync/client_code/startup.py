import anvil.server
from anvil_extras import routing

from .TodoList import TodoList

routing.launch()
