"""The inbound documents the erp-adapter has read from Business Central (I5)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, String
from sqlalchemy.orm import Mapped, mapped_column

from libs.store import Base, UTCDateTime


class ErpInboundDocumentRow(Base):
    """A purchase order as last sent to the inventory service.

    `last_modified` is BC's `lastModifiedDateTime` (the poll's watermark is the largest one);
    `closed` once the document left BC (fully received and deleted) or was closed.
    """

    __tablename__ = "erp_inbound_document"

    document_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    number: Mapped[str] = mapped_column(String(32))
    last_modified: Mapped[str] = mapped_column(String(32))
    digest: Mapped[str] = mapped_column(String(64))
    closed: Mapped[bool] = mapped_column(Boolean)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
