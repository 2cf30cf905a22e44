import anvil.google.auth, anvil.google.drive, anvil.google.mail
from anvil.google.drive import app_files
import anvil.microsoft.auth
import anvil.facebook.auth
import anvil.stripe
import anvil.secrets
import anvil.files
from anvil.files import data_files
import anvil.email
import anvil.users
import anvil.tables as tables
import anvil.tables.query as q
from anvil.tables import app_tables

from .Utils import *
from . import Data
from .Validation import ValidationError, ticket_problems, customer_problems
import datetime


def _next_number():
  counter = app_tables.ticket_counter.get()
  if counter is None:
    counter = app_tables.ticket_counter.add_row(next_number=1)
  number = counter['next_number']
  counter['next_number'] += 1
  return number


@staff_callable
@tables.in_transaction
def open_ticket(fields, customer, note=""):
  problems = ticket_problems(fields)
  known = app_tables.customers.has_row(customer)
  if not known:
    problems += customer_problems(customer)
  if problems:
    raise ValidationError("; ".join(problems))
  if not known:
    customer = (app_tables.customers.get(email=customer['email'])
                or app_tables.customers.add_row(joined=now(), **customer))
  me = anvil.users.get_user()
  ticket = app_tables.tickets.add_row(
    number=_next_number(), customer=customer, owner=me, watchers=[me], status=Data.OPEN, opened=now(),
    due=datetime.date.today() + datetime.timedelta(days=Data.DAYS_TO_ANSWER), **fields)
  app_tables.notes.add_row(ticket=ticket, author=me, text=note or "Opened", at=now())
  return ticket


@staff_callable
def add_note(ticket, text):
  app_tables.notes.add_row(ticket=ticket, author=anvil.users.get_user(), text=text, at=now())
  return len(app_tables.notes.search(ticket=ticket))


@staff_callable
def list_tickets(filters={}, newest_first=True):
  return app_tables.tickets.search(tables.order_by('number', ascending=not newest_first), **filters)


@staff_callable
def ticket_summary(ticket):
  notes = app_tables.notes.search(tables.order_by('at', ascending=False), ticket=ticket)
  return {
    'customer_email': ticket['customer']['email'],
    'owner_email': ticket['owner']['email'],
    'watchers': [w['email'] for w in ticket['watchers']],
    'first_note': notes[len(notes) - 1]['text'],
    'latest_note': notes[0]['text'],
    'due': ticket['due'],
  }


@staff_callable
def due_between(start, end):
  return [t['number'] for t in app_tables.tickets.search(tables.order_by('number'),
                                                         due=q.between(start, end, max_inclusive=True))]


@staff_callable
def notes_for(tickets):
  wanted = set(tickets)
  rows = app_tables.notes.search(tables.order_by('at'), ticket=q.any_of(*wanted))
  return sorted({r['ticket']['number'] for r in rows})


@staff_callable
def watched_by_me():
  me = anvil.users.get_user()
  return [t['number'] for t in app_tables.tickets.search(tables.order_by('number'), watchers=[me])]


@staff_callable
def count_open():
  return len(app_tables.tickets.search(status=Data.OPEN))


@tables.in_transaction
@staff_callable
def close_tickets(tickets, fail_after=None):
  for i, ticket in enumerate(tickets):
    if fail_after is not None and i == fail_after:
      raise RuntimeError("stopped after %d tickets" % i)
    ticket.update(status=Data.CLOSED, closed=now())
  return [t['status'] for t in tickets]


@anvil.server.callable(require_user=True)
def reopen(ticket):
  ticket['status'] = Data.OPEN
  ticket['closed'] = None
  return dict(ticket)


@staff_callable
@tables.in_transaction(relaxed=True)
def close_and_tell(ticket):
  ticket.update(status=Data.CLOSED, closed=now())
  anvil.email.send(to=ticket['customer']['email'], from_name="Help Desk",
                   subject="Ticket %d closed" % ticket['number'], text="We closed your ticket.")
  return ticket['status']


@anvil.server.callable(require_user=lambda user: user['role'] == 'lead')
def export_to_drive():
  return app_files.tickets_sheet.add_row(count=count_open())
