"""`anvil.microsoft`: its modules import (apps with the Microsoft API service import them everywhere), but
anvil-dev does not provide the service: using them raises NotImplementedError."""
