import anvil.server


@anvil.server.portable_class
class Todo:
  fields = ("uuid", "description", "done")

  def __init__(self, description, uuid=None, done=False):
    self.description = description
    self.uuid = uuid
    self.done = done

  @classmethod
  def from_row(cls, row):
    return cls(**{k: row[k] for k in cls.fields})

  def as_columns(self):
    return {k: getattr(self, k) for k in self.fields}

  def __repr__(self):
    return "Todo(%r)" % self.description
