"""Read a gating template file: YAML (marker space), GatingML 2.0 XML or a FlowJo workspace."""

from __future__ import annotations

import hashlib
from pathlib import Path

import yaml

from cikflow.exceptions import GatingTemplateError
from cikflow.gating.template import Template, validate_template

__all__ = ["read_template"]


def _read_importing(
    path: Path, doc: dict, *, raw: bytes, group: str, sample: str | None
) -> Template:
    """A YAML template that imports a GatingML/FlowJo file and overrides named gates."""
    from importlib import resources

    import jsonschema

    schema = yaml.safe_load(
        resources.files("cikflow").joinpath("schemas/import_template.schema.yaml").read_text()
    )
    errors = sorted(
        jsonschema.Draft202012Validator(schema).iter_errors(doc),
        key=lambda e: list(e.absolute_path),
    )
    if errors:
        where = ".".join(str(p) for p in errors[0].absolute_path) or "(top level)"
        raise GatingTemplateError(f"{path.name}: field '{where}': {errors[0].message}")
    base = read_template(
        path.parent / doc["import"], group=doc.get("group", group), sample=doc.get("sample", sample)
    )
    if base.kind == "yaml":
        raise GatingTemplateError(f"{path.name}: field 'import': must be a .xml or .wsp file")
    return Template(
        name=str(doc["name"]),
        version=str(doc["version"]),
        kind=base.kind,
        spec={"import": doc["import"], "overrides": dict(doc.get("overrides", {}))},
        # the template is both files: a change in either changes the hash
        sha256=hashlib.sha256(raw + base.sha256.encode()).hexdigest(),
        strategy=base.strategy,
    )


def read_template(
    path: str | Path, *, group: str = "All Samples", sample: str | None = None
) -> Template:
    """Read and validate a gating template.

    ``.xml`` files are read as GatingML 2.0 gate by gate (see
    :func:`cikflow.io.gatingml.read_gatingml`: a gate that cannot be built or
    computed is left out with a warning, with the gates depending on it); ``.wsp`` files as a
    FlowJo 10 workspace (see :func:`cikflow.io.flowjo.read_flowjo_template`);
    anything else as a YAML template validated against ``template.schema.yaml``.

    Parameters
    ----------
    path : str or pathlib.Path
        The template file.
    group, sample : str, optional
        FlowJo workspaces only: the sample group whose gates make the template,
        or the one sample whose gates do.

    Raises
    ------
    GatingTemplateError
        The file is missing or invalid; the message names the gate and field.
    """
    path = Path(path)
    if not path.is_file():
        raise GatingTemplateError(f"{path}: gating template not found")
    if path.suffix.lower() == ".wsp":
        from cikflow.io.flowjo import read_flowjo_template

        return read_flowjo_template(path, group=group, sample=sample)
    raw = path.read_bytes()
    sha = hashlib.sha256(raw).hexdigest()
    if path.suffix.lower() == ".xml":
        from cikflow.io.gatingml import read_gatingml

        strategy = read_gatingml(path)
        return Template(
            name=path.stem, version="", kind="gatingml", spec={}, sha256=sha, strategy=strategy
        )
    try:
        doc = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise GatingTemplateError(f"{path.name}: not valid YAML ({exc})") from exc
    if isinstance(doc, dict) and "import" in doc:
        return _read_importing(path, doc, raw=raw, group=group, sample=sample)
    spec = validate_template(doc, source=path.name)
    return Template(
        name=str(spec["name"]), version=str(spec["version"]), kind="yaml", spec=spec, sha256=sha
    )
