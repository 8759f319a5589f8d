"""Import a repository script that is not part of a package (``benchmarks/``, ``tools/``)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[2]


def load_script(relative_path: str) -> ModuleType:
    """The script at ``REPO/relative_path`` as a module named after its file.

    Registered in ``sys.modules`` first, as an import would: dataclasses look their module up
    there while the script runs.
    """
    path = REPO / relative_path
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, module)
    spec.loader.exec_module(module)
    return module
