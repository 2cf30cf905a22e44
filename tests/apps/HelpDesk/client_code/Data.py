# Shared by the forms and the server modules.
OPEN = "Open"
WAITING = "Waiting on customer"
CLOSED = "Closed"

STATUSES = [OPEN, WAITING, CLOSED]
DAYS_TO_ANSWER = 3
