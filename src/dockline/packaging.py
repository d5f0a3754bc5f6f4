"""What of the user's project travels with the Lambda function: the configuration and the
files it names. Plan first (``plan_config``), then write (``write_config``).

The function reads the same ``dockline.toml`` as the local engine, so ``dockline synth``
packages it beside the handler, at the root of the function's code (``/var/task`` on
Lambda, which is on ``sys.path``), with:

- the JSON Schema files routes name (``schema = "schemas/order.json"``), at the same
  path relative to the config (a schema outside the config's folder is copied under
  ``_outside/`` and the packaged config points there);
- the modules transforms name (``transform = "shop.pipeline:normalise_order"``): the
  top-level module of each, found in the config's folder without importing it, as one
  ``.py`` file or one package folder. Never the whole project folder.

Only ``[pipeline]`` and ``[[routes]]`` are packaged: ``[local]`` may hold webhook
headers or SMTP user names, and ``[aws]`` is the stack's business, not the function's.
Every problem is one ConfigError line naming the route and the field. No aws_cdk import.
"""

from __future__ import annotations

import re
import shutil
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib.machinery import PathFinder
from pathlib import Path
from typing import Any

from dockline.config import CONFIG_FILE_NAME, Settings, load_settings
from dockline.errors import ConfigError

PACKAGED_SECTIONS = ("pipeline", "routes")
# What the function needs beyond its runtime and the Powertools layer when a route has a
# schema: the layer brings fastjsonschema, not jsonschema (and rpds-py, a dependency, is
# compiled, so it is vendored for arm64 by `dockline deploy`, as orjson is). The range is
# pyproject.toml's.
# jsonschema-rs: the compiled accept-path (schema_fast.py); without it the function still
# validates, with jsonschema alone, about 50x slower per record.
SCHEMA_WHEELS = ("jsonschema>=4.18,<5", "jsonschema-rs>=0.60,<1")
OUTSIDE_FOLDER = "_outside"  # schemas that live outside the config's folder
_MODULE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_FUNCTION = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Never copied out of a package folder: caches, editor and VCS files.
_JUNK = ("__pycache__", "*.pyc", "*.pyo", ".*")
_HEADER = (
    "# Packaged by `dockline synth` from {source}: [pipeline] and [[routes]] only.\n"
    "# The Lambda function reads it from beside its handler (or the file DOCKLINE_CONFIG names).\n\n"
)


@dataclass(frozen=True, slots=True)
class ConfigPackage:
    """The plan: the config to write and the files to copy, by path in the function's code."""

    source: Path  # the user's dockline.toml
    document: Mapping[str, Any]  # [pipeline] and [[routes]], schema paths as packaged
    files: Mapping[str, Path] = field(default_factory=dict)  # packaged relative path -> file
    folders: Mapping[str, Path] = field(default_factory=dict)  # packaged relative path -> package folder
    wheels: tuple[str, ...] = ()  # requirements to vendor for the function's platform

    def paths(self) -> list[str]:
        """Every path the package adds to the function's code, sorted (for people and tests)."""
        return sorted([CONFIG_FILE_NAME, *self.files, *(name + "/" for name in self.folders)])


def plan_config(settings: Settings) -> ConfigPackage | None:
    """What to package for these settings; None when they come from no file (defaults or
    code) and need none. Raises ConfigError: routes or a csv_schema without a file (the
    environment cannot carry them), a missing schema, a transform whose module is not in
    the config's folder, or a file that cannot be read."""
    source = settings.source
    if source is None:
        if settings.pipeline.routes or settings.pipeline.csv_schema:
            raise ConfigError(
                "routes and csv_schema reach the Lambda function only in a dockline.toml: load the settings from a file"
            )
        return None
    base_dir = source.resolve().parent
    try:
        document = tomllib.loads(source.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot package {source}: {exc}") from exc
    packaged: dict[str, Any] = {name: document[name] for name in PACKAGED_SECTIONS if name in document}
    files: dict[str, Path] = {}
    folders: dict[str, Path] = {}
    routes: list[dict[str, Any]] = [dict(raw) for raw in packaged.get("routes", [])]  # checked by load_settings
    for index, route in enumerate(routes):
        where = f"[[routes]] {route.get('name', f'#{index + 1}')!r}"
        if "schema" in route:
            relative, path = _schema(where, route["schema"], base_dir, index)
            files[relative] = path
            route["schema"] = relative
        if "transform" in route:
            relative, path = _transform(where, route["transform"], base_dir)
            (folders if path.is_dir() else files)[relative] = path
    if routes:
        packaged["routes"] = routes
    wheels = SCHEMA_WHEELS if any("schema" in route for route in routes) else ()
    return ConfigPackage(source=source, document=packaged, files=files, folders=folders, wheels=wheels)


def _schema(where: str, value: Any, base_dir: Path, index: int) -> tuple[str, Path]:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where} schema must be a path to a JSON Schema file, not {value!r}")
    path = (base_dir / value).resolve()
    if not path.is_file():
        raise ConfigError(f"{where} schema: {base_dir / value} does not exist, so it cannot be packaged")
    if path.is_relative_to(base_dir):
        return path.relative_to(base_dir).as_posix(), path
    # Outside the config's folder ("../shared/order.json"): /var/task has no parent to hold it.
    return f"{OUTSIDE_FOLDER}/{index + 1}/{path.name}", path


def _transform(where: str, value: Any, base_dir: Path) -> tuple[str, Path]:
    """The top-level module of ``module:function`` in the config's folder: (relative path, file or folder)."""
    module, _, function = value.partition(":") if isinstance(value, str) else ("", "", "")
    if not _MODULE.match(module) or not _FUNCTION.match(function):
        raise ConfigError(f'{where} transform must be "module:function", not {value!r}')
    top = module.split(".")[0]
    if top == "dockline":
        raise ConfigError(f"{where} transform: a module of the config's folder named 'dockline' would hide dockline")
    spec = PathFinder.find_spec(top, [str(base_dir)])
    if spec is None:
        raise ConfigError(
            f"{where} transform: module {top!r} is not in the config's folder {base_dir} "
            f"(no {top}.py and no {top}/ package), so it cannot be packaged"
        )
    locations = list(spec.submodule_search_locations or [])
    if not locations:  # a single module
        origin = Path(spec.origin or "")
        if origin.suffix != ".py":
            raise ConfigError(f"{where} transform: module {top!r} is {origin.name}, not Python source (.py)")
        if module != top:
            raise ConfigError(f"{where} transform: {top}.py is a module, not a package, so {module!r} does not exist")
        return origin.name, origin
    folder = Path(locations[0])
    name = top
    for part in module.split(".")[1:]:  # each level of shop.orders.pipeline, without importing
        name = f"{name}.{part}"
        found = PathFinder.find_spec(name, locations) if locations else None
        if found is None:
            raise ConfigError(f"{where} transform: module {name!r} is not in the package {folder}")
        locations = list(found.submodule_search_locations or [])
    return folder.name, folder


def write_config(package: ConfigPackage, code_dir: Path) -> list[str]:
    """Write the config and copy its files into ``code_dir``; return the packaged paths.

    ``check_packaged`` then reads it back as the function will. Raises OSError.
    """
    import tomli_w  # only synth writes TOML (the cdk extra); the function only reads it

    for relative, path in package.files.items():
        target = code_dir / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
    for relative, folder in package.folders.items():
        shutil.copytree(folder, code_dir / relative, ignore=shutil.ignore_patterns(*_JUNK), dirs_exist_ok=True)
    text = _HEADER.format(source=package.source.name) + tomli_w.dumps(dict(package.document))
    (code_dir / CONFIG_FILE_NAME).write_text(text, encoding="utf-8")
    return package.paths()


def check_packaged(code_dir: Path) -> Settings:
    """Load the packaged config from ``code_dir`` as the function will (schemas and
    transforms resolved from there), so a package the function could not read fails at
    synth. Raises ConfigError."""
    try:
        return load_settings(code_dir / CONFIG_FILE_NAME)
    except ConfigError as exc:
        raise ConfigError(f"the packaged configuration does not load: {exc}") from exc
