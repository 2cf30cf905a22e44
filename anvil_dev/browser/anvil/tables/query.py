"""`anvil.tables.query` names, for client code that imports them to pass to server functions."""
