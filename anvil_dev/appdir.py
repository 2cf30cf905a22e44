"""One app directory in Anvil's layout: anvil.yaml, server_code/, client_code/, theme/, .anvil-dev/."""

from __future__ import annotations

import contextlib
import os
import re
import secrets
from collections.abc import Iterator, Mapping
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import yaml

DATA_DIR_NAME = ".anvil-dev"


def _yaml_loader() -> Any:
    """libyaml's loader where it is built in: real apps' anvil.yaml files run to thousands of lines.
    yaml is imported here, on first use: `anvil-dev call --url` reads no anvil.yaml, and yaml's
    import was ~12% of its run."""
    import yaml

    return getattr(yaml, "CSafeLoader", yaml.SafeLoader)


# anvil.yaml's top-level keys that anvil-dev reads, and the kinds of value each may hold.
_TOP_LEVEL: dict[str, tuple[tuple[type, str], ...]] = {
    "runtime_options": ((dict, "a mapping"),),
    "services": ((list, "a list of services"),),
    "db_schema": ((dict, "a mapping of tables"), (list, "a list of tables")),
    "dependencies": ((list, "a list of dependencies"),),
    "scheduled_tasks": ((list, "a list of tasks"),),
    "secrets": ((dict, "a mapping of secrets"), (list, "a list of secrets")),
}


class AppDirError(Exception):
    """The directory is not an app anvil-dev can serve; the message says why and what to do."""


class AppConfigError(AppDirError):
    """The app's anvil.yaml cannot be used as it is; the message names the file, the line and the fix."""


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
        """Raise AppDirError unless this is an Anvil app directory whose anvil.yaml can be used."""
        if not self.yaml_path.is_file():
            raise AppDirError(
                f"no anvil.yaml in {self.path} - run `anvil-dev init DIR` to create an app, or pass --app DIR"
            )
        self.__dict__["config"] = self.read_config()

    @cached_property
    def config(self) -> dict[str, Any]:
        return self.read_config()

    def read_config(self) -> dict[str, Any]:
        """Parse anvil.yaml afresh (the cached `config` is the one read first).

        Raises AppDirError, in one line naming the file, the line and what to do, for a file that is
        not YAML, not a mapping, or has a top-level key of the wrong kind (`db_schema: 5`): every
        command would otherwise fail later, deep inside, with a traceback.
        """
        try:
            with open(self.yaml_path, encoding="utf-8") as f:
                text = f.read()
        except FileNotFoundError:
            return {}
        except (OSError, UnicodeDecodeError) as e:
            raise AppConfigError(f"cannot read {self.yaml_path}: {e}") from None
        import yaml

        try:
            data = yaml.load(text, Loader=_yaml_loader()) or {}
        except yaml.YAMLError as e:
            raise AppConfigError(
                f"{self.yaml_path}{_yaml_where(e)} is not valid YAML: {_yaml_problem(e)} "
                "- fix the file and run the command again"
            ) from None
        if not isinstance(data, dict):
            raise AppConfigError(
                f"{self.yaml_path} must be a mapping of keys (name:, services:, db_schema:, ...), "
                f"not {_kind(data)} - fix the file and run the command again"
            )
        for key, kinds in _TOP_LEVEL.items():
            value = data.get(key)
            if value is not None and not isinstance(value, tuple(k for k, _ in kinds)):
                wanted = " or ".join(w for _, w in kinds)
                raise AppConfigError(
                    f"{self.yaml_path} line {_key_line(text, key)}: {key} is {_kind(value)}, "
                    f"but must be {wanted} - fix it, or remove {key}"
                )
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

    def declared_dependencies(self) -> list[dict[str, str]]:
        """The dependency apps anvil.yaml names: {"app_id", "name", "package"} each ("" when not given)."""
        out = []
        for dep in self.config.get("dependencies") or []:
            if not isinstance(dep, dict):
                continue
            hints = dep.get("resolution_hints") or {}
            out.append(
                {
                    "app_id": str(dep.get("app_id") or dep.get("dep_id") or hints.get("app_id") or ""),
                    "name": str(hints.get("name") or ""),
                    "package": str(hints.get("package_name") or dep.get("package_name") or ""),
                }
            )
        return out

    def dependency_hint(self, dep: Mapping[str, str]) -> str:
        """How to point anvil-dev at a dependency app it cannot find."""
        where = f" or put it beside the app as {self.path.parent / dep['package']}" if dep["package"] else ""
        return f"give its directory with --dep {dep['app_id'] or 'APP_ID'}=PATH{where}"

    def dependencies(self, explicit: Mapping[str, str] | None = None) -> tuple[list[AppDir], list[str]]:
        """The app's dependencies as app directories, and a line for each one that cannot be found.

        A dependency comes from `explicit` (app id -> path, from --dep), else from a directory
        beside this app named for its package (or its name).
        """
        given = dict(explicit or {})
        found: list[AppDir] = []
        missing: list[str] = []
        for dep in self.declared_dependencies():
            app_id, package = dep["app_id"], dep["package"]
            candidates = [given[app_id]] if app_id in given else []
            if package:
                candidates.append(str(self.path.parent / package))
            if dep["name"]:
                candidates.append(str(self.path.parent / dep["name"]))
            dep_dir = next((AppDir(c) for c in candidates if (Path(c) / "anvil.yaml").is_file()), None)
            if dep_dir is None:
                title = dep["name"] or package
                what = (f"{title} ({app_id})" if app_id else title) if title else f"app {app_id}".strip()
                missing.append(
                    f"dependency {what} not found (a dependency app of anvil.yaml, not a pip "
                    f"package) - {self.dependency_hint(dep)}"
                )
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

    @contextlib.contextmanager
    def serving(self, url: str) -> Iterator[None]:
        """Hold .anvil-dev/serve.lock while one `anvil-dev serve` runs this app; AppDirError if another holds it.

        Two servers on one app would both run its scheduled tasks, and fight over its data. flock(2)
        ties the lock to the open file, so it goes when the process does however it ends: a lock file
        left by a killed server is never stale. The file stays (removing it would race a new holder).
        """
        import fcntl

        path = self.ensure_data_dir() / "serve.lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 200, 0).decode("utf-8", "replace").split()
            os.close(fd)
            who = f" (pid {holder[0]}, {holder[1]})" if len(holder) >= 2 else ""
            raise AppDirError(
                f"another anvil-dev serve{who} is already serving {self.path} - stop it first, "
                "or call that one (two servers on one app would run its scheduled tasks twice)"
            ) from None
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()} {url}\n".encode(), 0)
            yield
        finally:
            os.close(fd)

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

    def client_uplink_key(self) -> str:
        """The client uplink key (`client_` and random text, as Anvil's are), made on first use."""
        return self._private_file(
            "client_uplink.key", lambda: ("client_" + secrets.token_urlsafe(24)).encode()
        ).decode()

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


def _kind(value: Any) -> str:
    """What a YAML value is, as a person would say it: `5 (a number)`, `a list`."""
    if isinstance(value, bool):
        return f"{str(value).lower()} (a boolean)"
    if isinstance(value, (int, float)):
        return f"{value} (a number)"
    if isinstance(value, str):
        return f"{value[:40]!r} (a string)"
    if isinstance(value, list):
        return "a list"
    return "a mapping" if isinstance(value, dict) else type(value).__name__


def _yaml_where(e: yaml.YAMLError) -> str:
    mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
    return f" line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""


def _yaml_problem(e: yaml.YAMLError) -> str:
    problem = getattr(e, "problem", None)
    context = getattr(e, "context", None)
    if problem:
        return f"{problem} ({context})" if context else str(problem)
    return " ".join(str(e).split())


def _key_line(text: str, key: str) -> int | str:
    """The line of a top-level key, found by composing the YAML (which keeps positions)."""
    import yaml

    try:
        node = yaml.compose(text, Loader=_yaml_loader())
    except yaml.YAMLError:
        node = None
    for k, _v in getattr(node, "value", None) or []:
        if getattr(k, "value", None) == key:
            return int(k.start_mark.line) + 1
    return "?"
