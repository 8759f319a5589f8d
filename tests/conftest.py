"""Fixtures shared by several test modules."""

from __future__ import annotations

import pytest

from tests.support.workflow import SnakemakeResult, run_snakemake, tiny_config, write_config


@pytest.fixture(scope="session")
def finished_tiny_run(tmp_path_factory: pytest.TempPathFactory) -> SnakemakeResult:
    """`snakemake -c2 all` on the tiny settings in a fresh work dir, run once per session
    (the result, whether it passed or not). Read-only for its users: dry runs, or copies."""
    workdir = tmp_path_factory.mktemp("full_run")
    configfile = write_config(workdir, tiny_config())
    return run_snakemake(workdir, configfile, "-c2", "all")


@pytest.fixture(autouse=True)
def _root_logging_handlers_of_this_test_only():
    """CLI entry points called in-process (``train_cli.main`` ...) install root handlers on the
    ``sys.stderr`` of their test (pytest's capture stream, closed after that test); a later
    test that logs before calling a CLI would then print "--- Logging error ---" tracebacks.
    Put back the handlers that were there before each test."""
    import logging

    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in root.handlers:
        if handler not in handlers:
            root.removeHandler(handler)
            if isinstance(handler, logging.FileHandler):
                handler.close()
    for handler in handlers:
        if handler not in root.handlers:
            root.addHandler(handler)
    root.setLevel(level)
