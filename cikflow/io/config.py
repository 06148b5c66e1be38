"""Read and validate the workflow configuration (``config/config.yaml``) with named errors.

An error names the file, the line and column, the key path and what is wrong, and for an
unknown key the nearest allowed one ("did you mean"), like the sample-sheet errors. The
schema is ``cikflow/schemas/config.schema.yaml``; its ``default:`` values fill keys the
file leaves out.
"""

from __future__ import annotations

import copy
import difflib
import functools
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from cikflow.exceptions import ConfigError

__all__ = ["check_config", "config_problems", "read_config", "read_config_text"]

#: at most this many problems in one message
_MAX_PROBLEMS = 10


@functools.cache
def _schema() -> dict[str, Any]:
    text = resources.files("cikflow").joinpath("schemas/config.schema.yaml").read_text()
    return yaml.safe_load(text)


def read_config_text(path: str | Path) -> tuple[dict[str, Any], yaml.Node | None]:
    """Parse a YAML configuration file: (mapping, node tree with line/column marks).

    Raises
    ------
    ConfigError
        The file is missing, is not valid YAML (file, line, column and the parser's
        reason) or is not a mapping.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: configuration file not found")
    text = path.read_text()
    loader = yaml.SafeLoader(text)
    try:  # one parse: the node tree (for line numbers), then the data built from it
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        problem = " ".join(str(p) for p in (exc.context, exc.problem) if p)
        raise ConfigError(f"{where}: not valid YAML: {problem}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    finally:
        loader.dispose()
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}: the configuration must be a mapping of keys, not a list or text"
        )
    return data, node


def _node_at(node: yaml.Node | None, path: list[Any]) -> tuple[yaml.Node | None, yaml.Node | None]:
    """(key node, value node) at ``path`` in a composed YAML tree, as deep as it goes."""
    key_node = None
    for part in path:
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                if k.value == str(part):
                    key_node, node = k, v
                    break
            else:
                return key_node, node
        elif (
            isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value)
        ):
            key_node, node = None, node.value[part]
        else:
            return key_node, node
    return key_node, node


def _where(source: str, node: yaml.Node | None) -> str:
    if node is None:
        return source
    return f"{source}:{node.start_mark.line + 1}:{node.start_mark.column + 1}"


def _key_path(path: list[Any]) -> str:
    return ".".join(str(p) for p in path) or "(top level)"


def _subschema(schema: dict[str, Any], path: list[Any]) -> dict[str, Any]:
    for part in path:
        if isinstance(part, int):
            schema = schema.get("items", {})
        else:
            schema = schema.get("properties", {}).get(part) or schema.get(
                "additionalProperties", {}
            )
        if not isinstance(schema, dict):
            return {}
    return schema


def config_problems(
    config: dict[str, Any], *, source: str = "config", node: yaml.Node | None = None
) -> list[str]:
    """Every way ``config`` breaks the schema, one message each (file:line:column: …).

    Examples
    --------
    >>> config_problems({"samples": "s.tsv", "compensaton": {}}, source="c.yaml")[0]
    "c.yaml: unknown key 'compensaton' (did you mean 'compensation'?)"
    """
    import jsonschema

    schema = _schema()
    validator = jsonschema.Draft202012Validator(schema)
    problems: list[str] = []
    errors = sorted(validator.iter_errors(config), key=lambda e: [str(p) for p in e.absolute_path])
    for error in errors:
        path = list(error.absolute_path)
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            allowed = list(_subschema(schema, path).get("properties", {}))
            for key in error.instance:
                if key in allowed:
                    continue
                hint = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.6)
                more = (
                    f" (did you mean '{hint[0]}'?)" if hint else f"; allowed: {', '.join(allowed)}"
                )
                key_node, _ = _node_at(node, [*path, key])
                inside = f" in {_key_path(path)}" if path else ""
                problems.append(f"{_where(source, key_node)}: unknown key '{key}'{inside}{more}")
            continue
        key_node, value_node = _node_at(node, path)
        if error.validator == "required":
            inside = f" in {_key_path(path)}" if path else ""
            for key in error.validator_value:
                if isinstance(error.instance, dict) and key not in error.instance:
                    problems.append(
                        f"{_where(source, key_node)}: required key '{key}'{inside} is missing"
                    )
            continue
        if error.validator == "enum":
            allowed = ", ".join(repr(v) for v in error.validator_value)
            message = f"{error.instance!r} is not one of {allowed}"
        else:
            message = error.message
        problems.append(f"{_where(source, value_node or key_node)}: {_key_path(path)}: {message}")
    return list(dict.fromkeys(problems))  # jsonschema repeats a `required` list per key


def _fill_defaults(config: dict[str, Any], schema: dict[str, Any]) -> None:
    """Set the schema's ``default`` of every absent key, recursively (in place)."""
    for key, sub in schema.get("properties", {}).items():
        if key not in config and "default" in sub:
            config[key] = copy.deepcopy(sub["default"])
        if isinstance(config.get(key), dict) and isinstance(sub, dict):
            _fill_defaults(config[key], sub)


def check_config(
    config: dict[str, Any], *, source: str = "config", node: yaml.Node | None = None
) -> dict[str, Any]:
    """Validate ``config`` and return a copy with the schema's defaults filled in.

    Raises
    ------
    ConfigError
        Naming every problem (at most 10), each with file, line, column and key path.
    """
    problems = config_problems(config, source=source, node=node)
    if problems:
        shown = problems[:_MAX_PROBLEMS]
        if len(problems) > _MAX_PROBLEMS:
            shown.append(f"… and {len(problems) - _MAX_PROBLEMS} more")
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(shown))
    filled = copy.deepcopy(config)
    _fill_defaults(filled, _schema())
    # `--config strict=true` arrives as text; the schema allows it, the rest reads a bool
    filled["strict"] = str(filled["strict"]).lower() == "true"
    return filled


def read_config(path: str | Path) -> dict[str, Any]:
    """Read, validate and complete a configuration file (see :func:`check_config`)."""
    data, node = read_config_text(path)
    return check_config(data, source=str(path), node=node)
