import anvil.server
import anvil.users
from anvil.tables import app_tables

from .Utils import staff_callable, now


@anvil.server.callable
def sign_up_agent(email, password, role="agent"):
  user = anvil.users.signup_with_email(email, password)
  user['role'] = role
  anvil.users.force_login(user)
  anvil.server.session['user_id'] = user.get_id()
  anvil.server.session['user'] = user
  anvil.server.session['since'] = now()
  return anvil.users.get_user()['email']


@staff_callable
def who_am_i():
  user = anvil.users.get_user()
  return {
    'email': anvil.users.get_user()['email'],
    'role': user['role'],
    'session_row_matches': anvil.server.session['user'] == user,
    'by_id': app_tables.users.get_by_id(anvil.server.session['user_id'])['email'],
    'since_is_aware': anvil.server.session['since'].tzinfo is not None,
  }


@staff_callable
def dashboard():
  # A call to another module's function goes through anvil.server.call, as the client's would.
  return {'open': anvil.server.call('count_open'), 'origin': anvil.server.get_app_origin()}


@anvil.server.callable
def sign_out():
  anvil.users.logout()
  anvil.server.session.clear()
