"""The serving process: Flask app, calls, sessions, static files, console, uplink."""
