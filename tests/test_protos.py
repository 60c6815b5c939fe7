"""The committed stubs are exactly what `make protos` generates from protos/."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GENERATED = ("node_pb2.py", "node_pb2.pyi", "node_pb2_grpc.py")


def test_generated_stubs_are_up_to_date(tmp_path: Path) -> None:
    source = ROOT / "protos" / "credit" / "v1" / "node.proto"
    target = tmp_path / "protos" / "credit" / "v1"
    target.mkdir(parents=True)
    shutil.copy(source, target / "node.proto")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            "-I",
            ".",
            "--python_out=.",
            "--pyi_out=.",
            "--grpc_python_out=.",
            "protos/credit/v1/node.proto",
        ],
        cwd=tmp_path,
        check=True,
    )
    stale = [
        name
        for name in GENERATED
        if (target / name).read_bytes() != (ROOT / "protos" / "credit" / "v1" / name).read_bytes()
    ]
    assert not stale, f"stubs out of date with node.proto, run `make protos`: {stale}"
