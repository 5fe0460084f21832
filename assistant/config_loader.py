"""Reading a settings dataclass from defaults, a TOML file, the environment and explicit overrides.

One loader serves both settings objects (the app's `Settings` and the trainer's `TrainConfig`): the same
type conversion, the same messages for a bad value or an unknown key, the same table of help texts.
Each field's help text lives in its metadata (`setting(default, "help")`), so the README's tables are
generated from the code (`python -m assistant settings --markdown`) and a test keeps them in step.
"""
from __future__ import annotations

import dataclasses
import logging
import tomllib
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off", "")


def setting(default: Any, help: str) -> Any:  # noqa: A002 - "help" reads best in the field declarations
    """A dataclass field with its help text; a list default is copied per instance."""
    if isinstance(default, list):
        return dataclasses.field(default_factory=lambda: list(default), metadata={"help": help})
    return dataclasses.field(default=default, metadata={"help": help})


def field_types(cls: type) -> dict[str, Any]:
    """Field name -> its real type (annotations are strings under `from __future__ import annotations`)."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _as_bool(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(raw)


def _as_number(raw: Any, kind: type) -> int | float:
    if isinstance(raw, bool):
        raise ValueError(raw)  # int(True) is 1: a TOML `true` is not a number
    if kind is int and isinstance(raw, float) and not raw.is_integer():
        raise ValueError(raw)  # int(2.5) would silently drop the fraction
    return kind(raw)


def coerce(name: str, raw: Any, kind: Any) -> Any:
    """A TOML or environment value as the field's type, or a ValueError that names the setting."""
    try:
        if kind is Path:
            return Path(raw).expanduser()
        if kind is bool:
            return _as_bool(raw)
        if kind in (int, float):
            return _as_number(raw, kind)
        if typing.get_origin(kind) is list:
            items = raw.split(",") if isinstance(raw, str) else list(raw)
            return [str(item).strip() for item in items if str(item).strip()]
        return str(raw)
    except (TypeError, ValueError):
        label = getattr(kind, "__name__", str(kind))
        raise ValueError(f"Setting {name!r} has the value {raw!r}, which is not a valid {label}.") from None


def read_toml(path: Path, table: str) -> dict[str, Any]:
    """The `[table]` of a TOML file, or its top level when it has no such table."""
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"Settings file {path} is not valid TOML: {error}.") from None
    value = data.get(table, data)
    return value if isinstance(value, dict) else {}


@dataclasses.dataclass(frozen=True)
class Source:
    """Where values come from, in increasing priority, for one settings class."""

    toml_path: Path | None = None
    toml_table: str = ""
    env: Mapping[str, str] = dataclasses.field(default_factory=dict)
    env_prefix: str = ""  # e.g. ASSISTANT_: every field NAME can be set as ASSISTANT_NAME
    env_aliases: Mapping[str, str] = dataclasses.field(default_factory=dict)  # other tools' variable -> field
    key_aliases: Mapping[str, str] = dataclasses.field(default_factory=dict)  # TOML/override key -> field


def load_dataclass(cls: type[T], source: Source, overrides: Mapping[str, Any] | None = None) -> T:
    """Build `cls`: defaults < TOML file < environment (aliases first, so the own prefix wins) < overrides."""
    kinds = field_types(cls)
    values: dict[str, Any] = {}

    def put(key: str, raw: Any, where: str) -> None:
        name = source.key_aliases.get(key, key)
        if name not in kinds:
            raise ValueError(f"Unknown setting {key!r} in {where}. Known settings: {', '.join(sorted(kinds))}.")
        values[name] = coerce(key, raw, kinds[name])

    if source.toml_path is not None:
        for key, raw in read_toml(source.toml_path, source.toml_table).items():
            put(key, raw, str(source.toml_path))
        log.info("Settings read from %s", source.toml_path)
    values.update(_from_environment(source, kinds))
    for key, raw in (overrides or {}).items():
        put(key, raw, "the overrides")
    return cls(**values)


def _from_environment(source: Source, kinds: dict[str, Any]) -> dict[str, Any]:
    """Values set in the environment: other tools' names first, so the own prefix wins when both are set."""
    values = {name: coerce(variable, source.env[variable], kinds[name])
              for variable, name in source.env_aliases.items() if source.env.get(variable)}
    if source.env_prefix:
        for name, kind in kinds.items():
            variable = f"{source.env_prefix}{name.upper()}"
            if source.env.get(variable) is not None:
                values[name] = coerce(variable, source.env[variable], kind)
    return values


def unknown_variables(cls: type, env: Mapping[str, str], prefix: str, extra: tuple[str, ...] = ()) -> list[str]:
    """Environment variables with the prefix that name no setting (a typo silently ignored is worse)."""
    known = {f"{prefix}{name.upper()}" for name in field_types(cls)} | set(extra)
    return sorted(variable for variable in env if variable.startswith(prefix) and variable not in known)


def _shown_default(field: dataclasses.Field, base: Path | None) -> str:
    if field.default_factory is not dataclasses.MISSING:
        value: Any = field.default_factory()
    else:
        value = field.default
    if isinstance(value, Path) and base is not None and value.is_relative_to(base):
        value = value.relative_to(base).as_posix()
    if isinstance(value, list):
        value = ", ".join(value)
    if value == "":
        return "empty"
    return f"`{str(value).lower() if isinstance(value, bool) else value}`"


def replace_table(document: Path, name: str, table: str) -> None:
    """Put `table` between the `<!-- settings: NAME -->` and `<!-- end settings -->` markers of a document."""
    import re

    text = document.read_text()
    pattern = re.compile(rf"(<!-- settings: {re.escape(name)} -->\n).*?(\n<!-- end settings -->)", re.S)
    if not pattern.search(text):
        raise ValueError(f"{document} has no <!-- settings: {name} --> marker.")
    document.write_text(pattern.sub(lambda m: m.group(1) + table + m.group(2), text))


def markdown_table(cls: type, base: Path | None = None, key_aliases: Mapping[str, str] | None = None) -> str:
    """| setting | default | meaning | for every field of `cls`, from the help texts in its metadata."""
    shown = {name: key for key, name in (key_aliases or {}).items()}
    rows = ["| setting | default | meaning |", "|---|---|---|"]
    for field in dataclasses.fields(cls):
        help_text = field.metadata.get("help", "")
        rows.append(f"| `{shown.get(field.name, field.name)}` | {_shown_default(field, base)} | {help_text} |")
    return "\n".join(rows)
