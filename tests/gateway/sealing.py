"""A federation CA and an issuing organisation's document-signing certificate for tests,
made once per test process (key generation is quick, but reports are printed by the
hundred)."""

from __future__ import annotations

import atexit
import io
import shutil
import tempfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from reportlab.pdfgen.canvas import Canvas  # type: ignore[import-untyped]

from federation.tls import SEAL, init_federation
from gateway.reports.seal import Seal, SealPlace, SealTrust

ORGANISATION = "天津市公共信用信息中心"


@dataclass(frozen=True)
class TestFederation:
    directory: Path
    seal: Seal
    trust: SealTrust

    @property
    def ca(self) -> Path:
        return self.directory / "ca.pem"

    @property
    def seal_cert(self) -> Path:
        return self.directory / f"{SEAL}.pem"

    @property
    def seal_key(self) -> Path:
        return self.directory / f"{SEAL}.key"


@cache
def federation() -> TestFederation:
    directory = Path(tempfile.mkdtemp(prefix="jjj-test-federation-"))
    atexit.register(shutil.rmtree, directory, True)
    init_federation(directory / "certs", organisation=ORGANISATION)
    certs = directory / "certs"
    return TestFederation(
        certs, Seal.from_files(certs / f"{SEAL}.pem", certs / f"{SEAL}.key"), SealTrust.from_file(certs / "ca.pem")
    )


@cache
def _face() -> bytes:
    out = io.BytesIO()
    canvas = Canvas(out, pagesize=(200, 60), invariant=1)
    canvas.rect(1, 1, 198, 58)
    canvas.showPage()
    canvas.save()
    return out.getvalue()


def sealed(pdf: bytes, seal: Seal | None = None) -> bytes:
    """``pdf`` signed by the test organisation's seal as the gateway signs a report: to
    show what the page checks catch even in a PDF whose signature is sound."""
    place = SealPlace(-1, (50.0, 100.0, 250.0, 160.0))
    return (seal or federation().seal).sign(pdf, place, _face())
