from ._anvil_designer import MainTemplate
from anvil import *
import anvil.server
import anvil.users
import anvil.js
import anvil.tables as tables
from anvil.tables import app_tables

from ..Components.TicketRow import TicketRow


class Main(MainTemplate):
  def __init__(self, **properties):
    self.init_components(**properties)
    anvil.users.login_with_form()
    self.repeating_panel_1.items = anvil.server.call("list_tickets")

  def new_ticket_click(self, **event_args):
    title = self.title_box.text
    ticket = anvil.server.call("open_ticket", {"title": title}, {"email": self.email_box.text})
    Notification("Ticket %s opened" % ticket["number"]).show()
