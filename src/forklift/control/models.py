"""The control plane's tables. A job's whole request is kept as JSON: the API echoes it back in
Describe*, and the runner reads what it needs from it. Status columns are separate so listings can
filter and sort in SQL."""

from __future__ import annotations

from sqlalchemy import JSON, Float, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from forklift.db import Base


class TrainingJobRow(Base):
    __tablename__ = "training_jobs"

    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    arn: Mapped[str] = mapped_column(String(255))
    request: Mapped[dict] = mapped_column(JSON)  # the validated CreateTrainingJob parameters (no secrets)
    status: Mapped[str] = mapped_column(String(16), index=True)  # InProgress | Completed | Failed | Stopping | Stopped
    secondary_status: Mapped[str] = mapped_column(String(32))
    transitions: Mapped[list] = mapped_column(JSON, default=list)  # [{Status, StartTime, EndTime?, StatusMessage}]
    failure_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[float] = mapped_column(Float, index=True)
    modified_at: Mapped[float] = mapped_column(Float, index=True)
    training_start: Mapped[float | None] = mapped_column(Float, nullable=True)
    training_end: Mapped[float | None] = mapped_column(Float, nullable=True)
    # Where the job's life stands, for a restarted server: queued -> preparing -> running -> uploading -> done
    phase: Mapped[str] = mapped_column(String(16), default="queued", index=True)
    stop_reason: Mapped[str | None] = mapped_column(String(32), nullable=True)  # Stopped | MaxRuntimeExceeded
    resolved_image: Mapped[str | None] = mapped_column(String(512), nullable=True)  # repo@sha256:...
    container_name: Mapped[str | None] = mapped_column(String(100), nullable=True)
    exit_status: Mapped[dict | None] = mapped_column(JSON, nullable=True)  # runtime ExitStatus.to_json()
    # <S3OutputPath>/<job>/output/model.tar.gz: longer than S3OutputPath's own limit of 1024
    model_artifacts: Mapped[str | None] = mapped_column(Text, nullable=True)
    log_stream: Mapped[str | None] = mapped_column(String(512), nullable=True)  # <job>/algo-1-<epoch>
    seq: Mapped[int] = mapped_column(Integer, default=0)  # admission order among equal creation times
    created_by: Mapped[str | None] = mapped_column(String(256), nullable=True)  # the principal that created it
