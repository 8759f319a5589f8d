"""TensorFlow's C++ start-up lines stay out of the console unless the user asks for them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from odflow.utils.tf_startup import stderr_silenced

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"
PROGRAM = (
    "import sys; sys.path.insert(0, sys.argv[1]); import _bootstrap, os\n"
    "import tensorflow as tf\n"
    "tf.config.list_logical_devices()\n"
    "print('level', os.environ['TF_CPP_MIN_LOG_LEVEL'])\n"
)


def _run(env_level: str | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    if env_level is not None:
        env["TF_CPP_MIN_LOG_LEVEL"] = env_level
    return subprocess.run([sys.executable, "-c", PROGRAM, str(SCRIPTS)], env=env,
                          capture_output=True, text=True, timeout=120, check=True)


@pytest.mark.slow
def test_a_script_starts_without_native_log_lines():
    result = _run(None)
    assert "level 3" in result.stdout
    native = [line for line in result.stderr.splitlines()
              if line[:1] in "IWE" and line[1:5].isdigit()]
    assert native == [], result.stderr
    assert "cuInit" not in result.stderr


@pytest.mark.slow
def test_a_level_the_user_set_is_kept():
    assert "level 0" in _run("0").stdout


def test_stderr_is_restored_after_an_error(capfd):
    with pytest.raises(RuntimeError), stderr_silenced():
        os.write(2, b"hidden\n")
        raise RuntimeError("boom")
    os.write(2, b"visible\n")
    assert capfd.readouterr().err == "visible\n"
