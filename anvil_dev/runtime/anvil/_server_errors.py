"""`anvil.server`'s exception classes, named on the wire as Anvil names them ("anvil.server.X")."""

from __future__ import annotations

from anvil._errors import AnvilWrappedError, _anvil_error, register_exception_type
from anvil._registry import REGISTRY

SerializationError = REGISTRY.error_class
register_exception_type("anvil.server.SerializationError", SerializationError)
InternalError = _anvil_error("anvil.server.InternalError")
InvalidResponseError = _anvil_error("anvil.server.InvalidResponseError")
RuntimeUnavailableError = _anvil_error("anvil.server.RuntimeUnavailableError")
UplinkDisconnectedError = _anvil_error("anvil.server.UplinkDisconnectedError")
ExecutionTerminatedError = _anvil_error("anvil.server.ExecutionTerminatedError")
TimeoutError = _anvil_error("anvil.server.TimeoutError")  # Anvil's name
QuotaExceededError = _anvil_error("anvil.server.QuotaExceededError")
BackgroundTaskError = _anvil_error("anvil.server.BackgroundTaskError")
BackgroundTaskNotFound = _anvil_error("anvil.server.BackgroundTaskNotFound")
BackgroundTaskKilled = _anvil_error("anvil.server.BackgroundTaskKilled")
PermissionDenied = _anvil_error("anvil.server.PermissionDenied")
ServiceNotAdded = _anvil_error("anvil.server.ServiceNotAdded")
StackOverflow = _anvil_error("anvil.server.StackOverflow")
NoServerFunctionError = _anvil_error("anvil.server.NoServerFunctionError", AnvilWrappedError)
CookieError = _anvil_error("anvil.server.CookieError", AnvilWrappedError)
