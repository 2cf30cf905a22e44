"""The host's HTTP routes, one blueprint per module: call, media, endpoints, theme, email, replay."""
