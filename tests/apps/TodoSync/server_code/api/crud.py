import datetime
import uuid

import anvil.server
import anvil.tables as tables
import anvil.tables.query as q
from anvil.tables import app_tables, order_by

from ..model.portable import Todo


def _list(name):
  return app_tables.lists.get(name=name) or app_tables.lists.add_row(name=name)


@anvil.server.callable("todos.sync")
def sync(changes, list_name="Inbox"):
  todo_list = _list(list_name)
  for todo in changes["new"]:
    todo.uuid = todo.uuid or str(uuid.uuid4())
    app_tables.todos.add_row(list=todo_list, updated=datetime.datetime.now(anvil.tz.tzutc()),
                             meta={"source": "sync"}, **todo.as_columns())
  for todo in changes["deleted"]:
    row = app_tables.todos.get(uuid=todo.uuid)
    if row:
      row.delete()
  return [Todo.from_row(r) for r in app_tables.todos.search(order_by("description"), list=todo_list)]


@anvil.server.callable
def ids_by_description():
  return {r['description']: r.get_id() for r in app_tables.todos.search()}


@anvil.server.callable
def tag(todo_id, *names):
  row = app_tables.todos.get_by_id(todo_id)
  tags = [app_tables.tags.get(name=n) or app_tables.tags.add_row(name=n) for n in names]
  row['tags'] = (row['tags'] or []) + tags
  return [t['name'] for t in row['tags']]


@anvil.server.callable
def todo_as_dict(todo_id):
  return dict(app_tables.todos.get_by_id(todo_id))


@anvil.server.callable
def same_list(todo_dict):
  return sorted(r['description'] for r in app_tables.todos.search(list=todo_dict['list']))


@anvil.server.callable
def find(text=None, tag_names=(), open_only=False, first=None):
  conditions = []
  if text:
    conditions.append(q.any_of(description=q.ilike('%' + text + '%'), meta={'note': text}))
  if tag_names:
    wanted = app_tables.tags.search(name=q.any_of(*tag_names))
    conditions.append(q.any_of(*[q.all_of(tags=[t]) for t in wanted]))
  if open_only:
    conditions.append(q.not_(done=True))
  rows = app_tables.todos.search(q.fetch_only('description', list=q.fetch_only('name')),
                                 order_by('description'), *conditions)
  if first:
    rows = rows[:first]
  return [(r['description'], r['list']['name']) for r in rows]


@anvil.server.callable
def mark_done(uuids):
  rows = app_tables.todos.search(uuid=q.any_of(*uuids))
  with tables.Transaction():
    for r in rows:
      r.update(done=True, updated=datetime.datetime.now(anvil.tz.tzutc()))
  return len(rows)


@anvil.server.callable
def note(todo_id, text):
  row = app_tables.todos.get_by_id(todo_id)
  meta = row['meta']
  meta['note'] = text
  row['meta'] = meta
  return row['meta']
