"""Image records in the database: which reference points at which manifest, and where blobs came from."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import BigInteger, CursorResult, Float, Integer, String, UniqueConstraint, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from forklift.db import Base

DIGEST_LENGTH = 135  # sha512:<128 hex>, the longest digest forklift.reference accepts


class ImageRow(Base):
    __tablename__ = "images"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    reference: Mapped[str] = mapped_column(String(512), unique=True)  # canonical name:tag (or name@digest)
    digest: Mapped[str] = mapped_column(String(DIGEST_LENGTH), index=True)  # image manifest digest
    index_digest: Mapped[str | None] = mapped_column(String(DIGEST_LENGTH), nullable=True)
    media_type: Mapped[str] = mapped_column(String(128))
    platform: Mapped[str | None] = mapped_column(String(64), nullable=True)
    size: Mapped[int] = mapped_column(BigInteger, default=0)  # config + layers, compressed: GiBs for CUDA images
    created_at: Mapped[float] = mapped_column(Float, default=time.time)


class BlobSourceRow(Base):
    """A repository known to hold a blob: lets a push mount instead of upload."""

    __tablename__ = "blob_sources"
    __table_args__ = (UniqueConstraint("digest", "registry", "repository"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    digest: Mapped[str] = mapped_column(String(DIGEST_LENGTH), index=True)
    registry_host: Mapped[str] = mapped_column("registry", String(255))
    repository: Mapped[str] = mapped_column(String(255))


@dataclass(frozen=True)
class ImageRecord:
    reference: str
    digest: str
    index_digest: str | None
    media_type: str
    platform: str | None
    size: int
    created_at: float


def _record(row: ImageRow) -> ImageRecord:
    return ImageRecord(row.reference, row.digest, row.index_digest, row.media_type, row.platform, row.size,
                       row.created_at)


class ImageRecords:
    def __init__(self, sessions: sessionmaker[Session]):
        self._sessions = sessions

    def put(self, record: ImageRecord) -> None:
        for attempt in range(2):
            try:
                return self._put(record)
            except IntegrityError:
                if attempt:  # a parallel pull of the same reference inserted it first: update that row
                    raise

    def _put(self, record: ImageRecord) -> None:
        with self._sessions.begin() as session:
            row = session.scalar(select(ImageRow).where(ImageRow.reference == record.reference))
            if row is None:
                row = ImageRow(reference=record.reference)
                session.add(row)
            row.digest, row.index_digest, row.media_type = record.digest, record.index_digest, record.media_type
            row.platform, row.size, row.created_at = record.platform, record.size, record.created_at

    def get(self, reference: str) -> ImageRecord | None:
        with self._sessions() as session:
            row = session.scalar(select(ImageRow).where(ImageRow.reference == reference))
            return _record(row) if row else None

    def all(self) -> list[ImageRecord]:
        with self._sessions() as session:
            return [_record(r) for r in session.scalars(select(ImageRow).order_by(ImageRow.reference))]

    def remove(self, reference: str) -> bool:
        with self._sessions.begin() as session:
            # a DELETE answers a CursorResult, which carries the row count
            result = cast(CursorResult[Any], session.execute(delete(ImageRow).where(ImageRow.reference == reference)))
            return result.rowcount > 0

    def add_blob_source(self, digest: str, registry: str, repository: str) -> None:
        try:
            with self._sessions.begin() as session:
                exists = session.scalar(select(BlobSourceRow.id).where(
                    BlobSourceRow.digest == digest, BlobSourceRow.registry_host == registry,
                    BlobSourceRow.repository == repository))
                if exists is None:
                    session.add(BlobSourceRow(digest=digest, registry_host=registry, repository=repository))
        except IntegrityError:
            pass  # a parallel pull of the same blob recorded it first

    def blob_sources(self, digest: str, registry: str) -> list[str]:
        with self._sessions() as session:
            return list(session.scalars(select(BlobSourceRow.repository).where(
                BlobSourceRow.digest == digest, BlobSourceRow.registry_host == registry)))
