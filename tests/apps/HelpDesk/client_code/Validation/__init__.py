import anvil.server
import anvil.js

from .. import Data


@anvil.server.portable_class
class ValidationError(Exception):
  """Raised on the server, caught by the forms (the class is portable, so it crosses the wire)."""


def ticket_problems(fields):
  """What is wrong with a new ticket's fields, as a list of messages (empty when it is fine)."""
  problems = []
  if not (fields.get("title") or "").strip():
    problems.append("A ticket needs a title")
  if fields.get("status", Data.OPEN) not in Data.STATUSES:
    problems.append("Unknown status: %s" % fields.get("status"))
  return problems


def customer_problems(customer):
  if "@" not in (customer.get("email") or ""):
    return ["A customer needs an email address"]
  return []
