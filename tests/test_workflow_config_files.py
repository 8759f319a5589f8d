"""odflow.workflow.config_files: a config file that is not YAML is named with its line and
column (1-based, counted by hand in each case below); the workflow says so for config.yaml."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from odflow.errors import OdflowError
from odflow.workflow.config_files import check_config_file, main
from tests.support.workflow import copy_workflow, environment


@pytest.mark.parametrize(("text", "line", "column"), [
    # The flow list never closes: the parser meets "seed:"'s colon on line 3, column 7.
    ("train:\n  num_steps: [3\n  seed: 1\n", 3, 7),
    # A tab where indentation was expected: line 2, column 1.
    ("train:\n\tnum_steps: 3\n", 2, 1),
    # An unclosed quote runs to the end of the file (line 3, column 1).
    ("classes: ['face\nx: 1\n", 3, 1),
])
def test_syntax_errors_name_file_line_and_column(tmp_path: Path, text: str, line: int,
                                                 column: int) -> None:
    path = tmp_path / "my config.yaml"
    path.write_text(text)
    with pytest.raises(OdflowError) as raised:
        check_config_file(path)
    assert str(raised.value).startswith(f"{path}, line {line}, column {column}: not valid YAML")
    assert "indent with spaces" in str(raised.value)


def test_not_utf8_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_bytes(b"model:\n  name: caf\xe9\n")  # "model:\n" 7 bytes + "  name: caf" 11
    with pytest.raises(OdflowError, match=r"c\.yaml, line 2: not UTF-8 text \(byte 18\)"):
        check_config_file(path)


def test_valid_and_missing_files_pass(tmp_path: Path, capsys) -> None:
    good = tmp_path / "good.yaml"
    good.write_text("train: {num_steps: 3}\n")
    check_config_file(good)
    check_config_file(tmp_path / "absent.yaml")  # Snakemake's own message says it is missing
    assert main([str(good)]) == 0
    assert main([str(tmp_path / "absent.yaml")]) == 2
    assert "absent.yaml: no such config file" in capsys.readouterr().err


@pytest.mark.workflow
@pytest.mark.slow
def test_workflow_names_the_place_of_a_typo_in_config_yaml(tmp_path: Path) -> None:
    """The workflow's own config.yaml (read by the Snakefile's configfile: directive)."""
    snakefile = copy_workflow(tmp_path / "workflow")
    config = snakefile.parent / "config.yaml"
    lines = config.read_text().splitlines()
    config.write_text("\n".join(lines + ["broken: [a, b", "next: 1"]) + "\n")
    done = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(snakefile),
                           "-d", str(tmp_path / "work"), "-n"], capture_output=True,
                          text=True, timeout=120, env=environment(), check=False)
    output = done.stdout + done.stderr
    assert done.returncode != 0, output
    # The list opened on the first added line still runs at "next:"; its colon is column 5.
    assert f"{config}, line {len(lines) + 2}, column 5: not valid YAML" in output, output
