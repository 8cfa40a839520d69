"""The 3PL's EDI drop folders: we write 940s and 997s to `inbound/` atomically (a dot-file,
fsynced, then renamed) and read 997/945/846/944 from `outbound/`, moving what we read to
`received/`."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


class EdiMailbox:
    """One trading partner's mailbox folder.

    Args:
        root: The EDI folder (`TPL_EDI_DIR`).
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.inbound = root / "inbound"
        self.outbound = root / "outbound"
        self.received = root / "received"
        for folder in (self.inbound, self.outbound, self.received):
            folder.mkdir(parents=True, exist_ok=True)

    def put(self, set_code: str, control_number: int, data: bytes) -> str:
        """Write one interchange into `inbound/` so the partner never sees half a file."""
        name = f"{set_code}_{control_number:09d}_{secrets.token_hex(4)}.x12"
        temporary = self.inbound / f".{name}.part"
        with open(temporary, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, self.inbound / name)
        return name

    def ready(self) -> list[Path]:
        """Outbound files complete and not yet read, oldest name first."""
        return sorted(
            p
            for p in self.outbound.iterdir()
            if p.is_file() and not p.name.startswith(".") and not p.name.endswith((".part", ".tmp"))
        )

    def done(self, path: Path) -> None:
        """Move a file we have read to `received/`."""
        os.replace(path, self.received / path.name)

    def read(self, path: Path) -> bytes:
        """The bytes of an outbound file."""
        return path.read_bytes()
