"""The gateway's signing keys on disk, and their rotation.

One PKCS#8 PEM file per key, named by its key id (the RFC 7638 thumbprint), readable by
the owner only; the file ``CURRENT`` names the key that signs. Rotation adds a key and
moves ``CURRENT``; old keys stay, so their public halves stay published in the JWKS and
everything they signed still verifies.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)

from credit.errors import FailedPrecondition
from credit.signing import Keyring, SigningKey

_CURRENT = "CURRENT"


def _write_private(path: Path, data: bytes) -> None:
    # Written under a temporary name and renamed: a key file is whole or absent.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".key-")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class KeyStore:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _load(self, kid: str) -> SigningKey:
        path = self.directory / f"{kid}.pem"
        try:
            private = load_pem_private_key(path.read_bytes(), password=None)
        except (OSError, ValueError) as exc:
            raise FailedPrecondition(f"signing key {kid} cannot be read from {path}: {exc}") from exc
        if not isinstance(private, Ed25519PrivateKey):
            raise FailedPrecondition(f"{path} is not an Ed25519 key")
        key = SigningKey.from_private(private)
        if key.kid != kid:
            raise FailedPrecondition(f"{path} holds key {key.kid}, not {kid}")
        return key

    def current_kid(self) -> str:
        """The id of the key that signs now.

        Raises:
            FailedPrecondition: no key yet (run ``jjj keys rotate``).
        """
        try:
            return (self.directory / _CURRENT).read_text(encoding="ascii").strip()
        except OSError:
            raise FailedPrecondition(f"no signing key in {self.directory}: run `jjj keys rotate`") from None

    def current(self) -> SigningKey:
        """The key that signs now.

        Raises:
            FailedPrecondition: no key yet (run ``jjj keys rotate``) or an unreadable one.
        """
        return self._load(self.current_kid())

    def rotate(self) -> SigningKey:
        """Make a new signing key and sign with it from now on; old keys stay published.

        Raises:
            OSError: the directory cannot be written.
        """
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        key = SigningKey.generate()
        pem = key.private.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
        _write_private(self.directory / f"{key.kid}.pem", pem)
        _write_private(self.directory / _CURRENT, key.kid.encode("ascii"))
        return key

    def ensure(self) -> SigningKey:
        """The current key, made first if there is none (a fresh demo).

        Raises:
            FailedPrecondition: a key file that cannot be read.
            OSError: the directory cannot be written.
        """
        if not (self.directory / _CURRENT).exists():
            return self.rotate()
        return self.current()

    def keyring(self) -> Keyring:
        """Every key ever used here, public halves only.

        Raises:
            FailedPrecondition: a key file that cannot be read.
        """
        if not self.directory.exists():
            return Keyring()
        return Keyring(self._load(p.stem).private.public_key() for p in sorted(self.directory.glob("*.pem")))
