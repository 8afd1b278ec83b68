"""The table of SageMaker resource tags: one row per (resource ARN, key), kept in the order added."""

from __future__ import annotations

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from forklift.db import Base


class TagRow(Base):
    __tablename__ = "resource_tags"

    resource_arn: Mapped[str] = mapped_column(String(256), primary_key=True)
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    value: Mapped[str] = mapped_column(String(256))
    seq: Mapped[int] = mapped_column(Integer)  # ListTags answers in the order tags were first added
