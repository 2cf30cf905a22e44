import anvil.secrets
import anvil.server
from anvil.tables import app_tables, order_by


@anvil.server.http_endpoint('/lists/:name/todos', methods=['GET'])
def list_todos(name, **params):
  if anvil.server.request.headers.get('authorization') != 'Bearer ' + anvil.secrets.get_secret('api_token'):
    return anvil.server.HttpResponse(401, "Bad token")
  todo_list = app_tables.lists.get(name=name)
  if todo_list is None:
    return anvil.server.HttpResponse(404, "No list called %s" % name)
  rows = app_tables.todos.search(order_by('description'), list=todo_list)
  if params.get('open') == 'yes':
    rows = [r for r in rows if not r['done']]
  return [{'description': r['description'], 'done': r['done'], 'updated': r['updated'].isoformat()} for r in rows]


@anvil.server.callable
def visit():
  anvil.server.session['visits'] = anvil.server.session.get('visits', 0) + 1
  return anvil.server.session['visits']
