import datetime

import anvil.server
import anvil.users
from anvil.tables import app_tables

# One decorator object, applied to every staff-only function in the app.
staff_callable = anvil.server.callable(require_user=True)


def now():
  # anvil.tz is not imported here: on Anvil it comes with anvil.server.
  return datetime.datetime.utcnow().replace(tzinfo=anvil.tz.tzutc())


def current_role():
  user = anvil.users.get_user()
  return user['role'] if user else None
