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
