"""The committed generated modules match the .proto files (regenerated with grpcio-tools)."""

from pathlib import Path

import pytest

from odflow.protos import regenerate

protoc = pytest.importorskip("grpc_tools.protoc")


def test_generated_modules_are_up_to_date(tmp_path: Path) -> None:
    for fresh in regenerate.generate(tmp_path):
        committed = regenerate.PROTO_DIR / fresh.name
        assert committed.read_bytes() == fresh.read_bytes(), (
            f"{committed} is stale: run `python -m odflow.protos.regenerate`")


def test_protos_match_reference_listing(tmp_path: Path) -> None:
    """The .proto files are what tools/schema_to_proto.py makes of the reference listing."""
    import runpy

    root = Path(__file__).resolve().parents[1]
    tool = runpy.run_path(str(root / "tools" / "schema_to_proto.py"))
    tool["main"](str(root / "tests/fixtures/reference/pipeline_schema.txt"), str(tmp_path))
    for name in regenerate.PROTO_FILES:
        assert (tmp_path / name).read_text() == (regenerate.PROTO_DIR / name).read_text()
