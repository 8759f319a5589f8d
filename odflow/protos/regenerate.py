"""Regenerate the committed ``*_pb2.py`` modules from the ``.proto`` files (grpcio-tools)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import tempfile
from pathlib import Path

PROTO_DIR = Path(__file__).resolve().parent
PROTO_FILES = ("pipeline.proto", "string_int_label_map.proto")


def generate(out_dir: Path) -> list[Path]:
    """Run protoc (from grpcio-tools) on our protos, writing ``*_pb2.py`` into ``out_dir``.

    protoc runs in its own process: loaded beside TensorFlow's protobuf runtime in one
    process, grpcio-tools' compiler crashes.
    """
    if importlib.util.find_spec("grpc_tools") is None:  # pragma: no cover - environment
        raise SystemExit("grpcio-tools is needed: pip install -e '.[test]'")
    args = [sys.executable, "-m", "grpc_tools.protoc", f"-I{PROTO_DIR}",
            f"--python_out={out_dir}", *PROTO_FILES]
    result = subprocess.run(args, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"protoc failed on {', '.join(PROTO_FILES)}:\n{result.stderr}")
    return [out_dir / name.replace(".proto", "_pb2.py") for name in PROTO_FILES]


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for generated in generate(Path(tmp)):
            (PROTO_DIR / generated.name).write_bytes(generated.read_bytes())
            print(f"wrote {PROTO_DIR / generated.name}")


if __name__ == "__main__":
    sys.exit(main())
