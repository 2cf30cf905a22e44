"""anvil-dev: a local development server for Anvil apps' Server Modules."""

__version__ = "0.1.0"
