import anvil.http
import anvil.server
from anvil.tables import app_tables

from TodoSync.model.portable import Todo as PackageTodo
from model.portable import Todo as BareTodo
from ..model import portable


@anvil.server.callable
def one_todo_class():
  return PackageTodo is BareTodo is portable.Todo


@anvil.server.callable
def summary():
  lists = {r['name']: len(app_tables.todos.search(list=r)) for r in app_tables.lists.search()}
  return {'lists': lists, 'open': anvil.server.call('open_count')}


@anvil.server.callable
def open_count():
  return len(app_tables.todos.search(done=False))


@anvil.server.callable
def share_link(list_name):
  return anvil.server.get_app_origin() + "/#?list=" + anvil.http.url_encode(list_name), anvil.server.get_api_origin()
