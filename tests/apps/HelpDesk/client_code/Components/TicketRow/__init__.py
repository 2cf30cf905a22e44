from ._anvil_designer import TicketRowTemplate
from anvil import *


class TicketRow(TicketRowTemplate):
  def __init__(self, **properties):
    self.init_components(**properties)
