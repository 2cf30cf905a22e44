import csv

import anvil.media
import anvil.server
from anvil.tables import app_tables


@anvil.server.callable
def attach_csv(todo_id):
  row = app_tables.todos.get_by_id(todo_id)
  text = "description,done\n%s,%s\n" % (row['description'], row['done'])
  row['attachment'] = anvil.BlobMedia('text/csv', text.encode(), name='todo.csv')
  return row['attachment']


@anvil.server.callable
def read_attachment(todo_id):
  media = app_tables.todos.get_by_id(todo_id)['attachment']
  with anvil.media.TempFile(media) as file_name:
    with open(file_name) as f:
      rows = list(csv.DictReader(f))
  return rows, media.name, media.content_type


@anvil.server.callable
def attach_upload(todo_id, media):
  row = app_tables.todos.get_by_id(todo_id)
  row['attachment'] = media
  return row['attachment'].length, row['attachment'].get_bytes().decode()
