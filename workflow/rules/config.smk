# Read config/config.yaml with named errors (file, line, column) before Snakemake loads it.
from pathlib import Path

from snakemake.exceptions import WorkflowError

from cikflow.exceptions import CikflowError
from cikflow.io.config import read_config_text

CONFIG_FILE = "config/config.yaml"
CONFIG_NODE = None
if Path(CONFIG_FILE).is_file():
    try:
        CONFIG_NODE = read_config_text(CONFIG_FILE)[1]
    except CikflowError as exc:
        raise WorkflowError(f"cikflow {type(exc).__name__}: {exc}") from None
