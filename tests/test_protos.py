"""The committed stubs are exactly what `make protos` generates from protos/."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROTOS = ("node", "gateway")
GENERATED = tuple(f"{name}{suffix}" for name in PROTOS for suffix in ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py"))


def test_generated_stubs_are_up_to_date(tmp_path: Path) -> None:
    target = tmp_path / "protos" / "credit" / "v1"
    target.mkdir(parents=True)
    for name in PROTOS:
        shutil.copy(ROOT / "protos" / "credit" / "v1" / f"{name}.proto", target / f"{name}.proto")
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
            *(f"protos/credit/v1/{name}.proto" for name in PROTOS),
        ],
        cwd=tmp_path,
        check=True,
    )
    stale = [
        name
        for name in GENERATED
        if (target / name).read_bytes() != (ROOT / "protos" / "credit" / "v1" / name).read_bytes()
    ]
    assert not stale, f"stubs out of date with the .proto files, run `make protos`: {stale}"
