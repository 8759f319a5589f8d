"""Regenerate the committed ``*_pb2.py`` modules from the ``.proto`` files (grpcio-tools)."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

PROTO_DIR = Path(__file__).resolve().parent
PROTO_FILES = ("pipeline.proto", "string_int_label_map.proto")


def generate(out_dir: Path) -> list[Path]:
    """Run protoc (from grpcio-tools) on our protos, writing ``*_pb2.py`` into ``out_dir``."""
    try:
        from grpc_tools import protoc
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise SystemExit("grpcio-tools is needed: pip install -e '.[test]'") from error
    args = ["protoc", f"-I{PROTO_DIR}", f"--python_out={out_dir}", *PROTO_FILES]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed on " + ", ".join(PROTO_FILES))
    return [out_dir / name.replace(".proto", "_pb2.py") for name in PROTO_FILES]


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for generated in generate(Path(tmp)):
            (PROTO_DIR / generated.name).write_bytes(generated.read_bytes())
            print(f"wrote {PROTO_DIR / generated.name}")


if __name__ == "__main__":
    sys.exit(main())
