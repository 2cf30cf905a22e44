"""One app directory in Anvil's layout: anvil.yaml, server_code/, client_code/, theme/, .anvil-dev/."""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml

DATA_DIR_NAME = ".anvil-dev"
# libyaml's loader where it is built in: real apps' anvil.yaml files run to thousands of lines.
_YamlLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class AppDirError(Exception):
    """The directory is not an app anvil-dev can serve; the message says why and what to do."""


class AppDir:
    """Paths and configuration of one app; cheap to build, reads anvil.yaml on first use."""

    def __init__(self, path: str | os.PathLike[str], data_dir: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path).resolve()
        # Where .anvil-dev/'s files live when not in the app (the pytest plugin's throwaway data).
        self._data_dir = Path(data_dir).resolve() if data_dir is not None else None

    @property
    def yaml_path(self) -> Path:
        return self.path / "anvil.yaml"

    @property
    def server_code(self) -> Path:
        return self.path / "server_code"

    @property
    def client_code(self) -> Path:
        return self.path / "client_code"

    @property
    def theme_assets(self) -> Path:
        return self.path / "theme" / "assets"

    @property
    def data_dir(self) -> Path:
        return self._data_dir or self.path / DATA_DIR_NAME

    @property
    def db_path(self) -> Path:
        return self.data_dir / "data.sqlite3"

    @property
    def media_dir(self) -> Path:
        return self.data_dir / "media"

    def check(self) -> None:
        """Raise AppDirError unless this looks like an Anvil app directory."""
        if not self.yaml_path.is_file():
            raise AppDirError(
                f"no anvil.yaml in {self.path} - run `anvil-dev init DIR` to create an app, "
                "or pass --app DIR"
            )

    @cached_property
    def config(self) -> dict[str, Any]:
        return self.read_config()

    def read_config(self) -> dict[str, Any]:
        """Parse anvil.yaml afresh (the cached `config` is the one read first)."""
        try:
            with open(self.yaml_path, encoding="utf-8") as f:
                data = yaml.load(f, Loader=_YamlLoader) or {}
        except FileNotFoundError:
            return {}
        except yaml.YAMLError as e:
            raise AppDirError(f"anvil.yaml in {self.path} is not valid YAML: {e}") from None
        if not isinstance(data, dict):
            raise AppDirError(f"anvil.yaml in {self.path} must be a mapping, not {type(data).__name__}")
        return data

    @property
    def package_name(self) -> str:
        """The Python package the app's modules live in, as on Anvil."""
        name = self.config.get("package_name") or self.path.name
        name = re.sub(r"\W", "_", str(name))
        return name if name and not name[0].isdigit() else "_" + name

    @property
    def runtime_options(self) -> dict[str, Any]:
        opts = self.config.get("runtime_options") or {}
        return opts if isinstance(opts, dict) else {}

    def dependencies(self, explicit: Mapping[str, str] | None = None) -> tuple[list[AppDir], list[str]]:
        """The app's dependencies as app directories, and a line for each one that cannot be found.

        A dependency comes from `explicit` (app id -> path, from --dep), else from a directory
        beside this app named for its package.
        """
        given = dict(explicit or {})
        found: list[AppDir] = []
        missing: list[str] = []
        for dep in self.config.get("dependencies") or []:
            if not isinstance(dep, dict):
                continue
            app_id = str(dep.get("app_id") or dep.get("dep_id") or "")
            hints = dep.get("resolution_hints") or {}
            package = hints.get("package_name") or dep.get("package_name")
            candidates = [given[app_id]] if app_id in given else []
            if package:
                candidates.append(str(self.path.parent / package))
            if hints.get("name"):
                candidates.append(str(self.path.parent / hints["name"]))
            dep_dir = next((AppDir(c) for c in candidates if (Path(c) / "anvil.yaml").is_file()), None)
            if dep_dir is None:
                what = f"{hints.get('name') or package or 'dependency'} ({app_id})"
                missing.append(f"dependency {what} not found - give its directory with --dep {app_id}=PATH"
                               + (f" or put it beside the app as {self.path.parent / package}" if package else ""))
            else:
                found.append(dep_dir)
        return found, missing

    def service_config(self, source_suffix: str) -> dict[str, Any] | None:
        """The `services:` entry whose source ends with `source_suffix`, or None when absent."""
        for svc in self.config.get("services") or []:
            if isinstance(svc, dict) and str(svc.get("source", "")).endswith(source_suffix):
                return svc
        return None

    def ensure_data_dir(self) -> Path:
        """Create .anvil-dev/ (mode 0700) with a .gitignore, and return it."""
        d = self.data_dir
        d.mkdir(mode=0o700, exist_ok=True)
        gi = d / ".gitignore"
        if not gi.exists():
            gi.write_text("*\n")
        return d

    def _private_file(self, name: str, make: Any) -> bytes:
        """Read .anvil-dev/NAME, creating it (mode 0600) with make() on first use.

        Several processes may race to create it: each writes a private temporary file and links
        it into place, so a reader never sees a half-written file and only one value wins.
        """
        p = self.ensure_data_dir() / name
        try:
            return p.read_bytes().strip()
        except FileNotFoundError:
            pass
        tmp = p.with_name(f".{name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, make())
        finally:
            os.close(fd)
        try:
            os.link(tmp, p)
        except FileExistsError:
            pass
        finally:
            os.unlink(tmp)
        return p.read_bytes().strip()

    def secret_key(self) -> bytes:
        """The app's signing key (sessions, row MACs, media URLs), made on first run."""
        return self._private_file("secret.key", lambda: secrets.token_hex(32).encode())

    def uplink_key(self) -> str:
        return self._private_file("uplink.key", lambda: secrets.token_urlsafe(24).encode()).decode()

    def cli_token(self) -> str:
        """A token only processes that can read .anvil-dev/ know; `call --as` presents it."""
        return self._private_file("cli.token", lambda: secrets.token_urlsafe(32).encode()).decode()

    def server_module_files(self) -> list[Path]:
        """Every .py under server_code/, packages' __init__ first, in a stable order."""
        root = self.server_code
        if not root.is_dir():
            return []
        files = []
        for p in sorted(root.rglob("*.py")):
            rel = p.relative_to(root)
            if any(part.startswith(".") or part == "__pycache__" for part in rel.parts):
                continue
            files.append(p)
        return files

    def module_name(self, file: Path) -> str:
        """Dotted module name (inside the app package) of a file under server_code/ or client_code/."""
        for root in (self.server_code, self.client_code):
            try:
                rel = file.relative_to(root)
            except ValueError:
                continue
            parts = list(rel.with_suffix("").parts)
            if parts and parts[-1] == "__init__":
                parts.pop()
            return ".".join(parts)
        raise ValueError(f"{file} is not under server_code/ or client_code/")

    def relpath(self, file: str | os.PathLike[str]) -> str:
        """A path relative to the app directory where it is inside it, for messages."""
        try:
            return str(Path(file).resolve().relative_to(self.path))
        except ValueError:
            return str(file)
