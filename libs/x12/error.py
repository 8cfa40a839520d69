"""The one exception the X12 reader, writer and mappings raise."""

from __future__ import annotations


class X12Error(ValueError):
    """A malformed interchange, or a document the writer cannot express.

    Args:
        message: what is wrong, in words a person fixing the file understands.
        tag: the segment concerned (``"SE"``, ``"ISA"``...), when there is one.
        index: the segment's ordinal in the file, counted from 1 (the first ISA is 1).
        code: the X12 syntax error code a 997 would carry for it (AK5 / AK9 / AK3 codes),
            when the error is one a functional acknowledgment reports.
    """

    def __init__(
        self, message: str, *, tag: str | None = None, index: int | None = None, code: str = ""
    ) -> None:
        self.tag = tag
        self.index = index
        self.code = code
        self.detail = message
        where = ""
        if tag is not None and index is not None:
            where = f"{tag} segment #{index}: "
        elif tag is not None:
            where = f"{tag} segment: "
        super().__init__(where + message)
