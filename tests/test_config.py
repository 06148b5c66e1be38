"""Configuration errors name the file, line, column and key, like the sheet's."""

from __future__ import annotations

import pytest

from cikflow.exceptions import ConfigError
from cikflow.io.config import check_config, read_config


@pytest.mark.parametrize("path", ["config/config.yaml", ".test/config/config.yaml"])
def test_shipped_configurations_are_valid(repo_dir, path):
    config = read_config(repo_dir / path)
    assert config["report"]["pdf"] == "auto"  # filled from the schema where absent
    assert config["strict"] is False


def _write(tmp_path, text):
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


def _minimal(repo_dir):
    return (repo_dir / ".test" / "config" / "config.yaml").read_text()


def test_misspelt_top_level_key_names_line_and_the_right_key(repo_dir, tmp_path):
    text = _minimal(repo_dir).replace("\ncompensation:", "\ncompensaton:")
    line = text.splitlines().index("compensaton:") + 1
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        read_config(path)
    message = str(info.value)
    assert f"{path}:{line}:1: unknown key 'compensaton' (did you mean 'compensation'?)" in message
    assert "required key" not in message  # a missing section takes its defaults
    assert "$schema" not in message  # no schema dump
    assert len(message.splitlines()) == 2


def test_misspelt_nested_key_names_its_section(repo_dir, tmp_path):
    text = _minimal(repo_dir).replace("  bins: 48", "  binz: 48")
    line = text.splitlines().index("  binz: 48") + 1
    path = _write(tmp_path, text)
    with pytest.raises(
        ConfigError, match=rf":{line}:3: unknown key 'binz' in report \(did you mean 'bins'\?\)"
    ):
        read_config(path)


def test_bad_value_names_key_path_line_and_column(repo_dir, tmp_path):
    text = _minimal(repo_dir).replace("  min_events: 50", "  min_events: -5")
    line = text.splitlines().index("  min_events: -5") + 1
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError, match=rf":{line}:15: gating.min_events: -5 is less than"):
        read_config(path)


def test_bad_choice_lists_the_allowed_values(repo_dir, tmp_path):
    path = _write(tmp_path, _minimal(repo_dir).replace("  bins: 48", "  bins: 48\n  pdf: maybe"))
    with pytest.raises(ConfigError, match=r"report\.pdf: 'maybe' is not one of 'auto', 'always'"):
        read_config(path)


def test_yaml_syntax_error_names_line_and_column(tmp_path):
    path = _write(tmp_path, "samples: a.tsv\ntemplate: [x\nreport: {}\n")
    with pytest.raises(ConfigError) as info:
        read_config(path)
    assert str(info.value).startswith(f"{path}:3:")
    assert "not valid YAML" in str(info.value)


def test_missing_file_and_non_mapping(tmp_path):
    with pytest.raises(ConfigError, match="configuration file not found"):
        read_config(tmp_path / "absent.yaml")
    with pytest.raises(ConfigError, match="must be a mapping"):
        read_config(_write(tmp_path, "- a\n- b\n"))


def test_strict_given_as_text_on_the_command_line_is_a_boolean(repo_dir):
    config = read_config(repo_dir / ".test" / "config" / "config.yaml")
    assert check_config({**config, "strict": "true"})["strict"] is True
    assert check_config({**config, "strict": "False"})["strict"] is False
    assert check_config({**config, "strict": True})["strict"] is True


def test_command_line_values_without_a_file_position(repo_dir):
    """A key given with --config has no line: the message still names the key path."""
    config = read_config(repo_dir / ".test" / "config" / "config.yaml")
    with pytest.raises(ConfigError, match=r"^invalid configuration:\n  config: strict: 'yes'"):
        check_config({**config, "strict": "yes"}, source="config")


def test_a_minimal_config_takes_every_default_and_names_a_missing_sheet_once(tmp_path):
    path = _write(tmp_path, "samples: config/samples.tsv\n")
    config = read_config(path)
    assert config["compensation"] == {"source": "fcs", "matrix_file": None}
    assert config["gating"]["min_events"] == 100
    assert config["demo"]["days"] == [0, 7, 14, 21]
    assert config["report"]["pdf"] == "auto"
    empty = _write(tmp_path, "strict: false\n")
    with pytest.raises(ConfigError) as info:
        read_config(empty)
    assert str(info.value).count("required key 'samples' is missing") == 1
