"""Read a gating template file: YAML (marker space) or GatingML 2.0 XML (through flowkit)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import yaml

from cikflow.exceptions import GatingTemplateError
from cikflow.gating.template import Template, validate_template

__all__ = ["read_template"]


def read_template(path: str | Path) -> Template:
    """Read and validate a gating template.

    ``.xml`` files are parsed as GatingML 2.0 by flowkit; anything else as a
    YAML template validated against ``template.schema.yaml``.

    Raises
    ------
    GatingTemplateError
        The file is missing or invalid; the message names the gate and field.
    """
    path = Path(path)
    if not path.is_file():
        raise GatingTemplateError(f"{path}: gating template not found")
    raw = path.read_bytes()
    sha = hashlib.sha256(raw).hexdigest()
    if path.suffix.lower() == ".xml":
        import flowkit as fk

        try:
            strategy = fk.parse_gating_xml(str(path))
        except Exception as exc:
            raise GatingTemplateError(
                f"{path.name}: not a valid GatingML 2.0 file ({type(exc).__name__}: {exc})"
            ) from exc
        return Template(
            name=path.stem, version="", kind="gatingml", spec={}, sha256=sha, strategy=strategy
        )
    try:
        doc = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise GatingTemplateError(f"{path.name}: not valid YAML ({exc})") from exc
    spec = validate_template(doc, source=path.name)
    return Template(
        name=str(spec["name"]), version=str(spec["version"]), kind="yaml", spec=spec, sha256=sha
    )
