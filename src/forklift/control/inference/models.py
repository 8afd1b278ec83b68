"""The inference tables: models, endpoint configs, endpoints and the containers serving them.

Models and configs are immutable once created, so their whole validated request is kept as JSON
and echoed back by Describe*. An endpoint row holds what the API reports (status, per-variant
summaries) plus the generation of the fleet it serves from; each running container is an
`EndpointInstanceRow`, so a restarted server can re-adopt it.
"""

from __future__ import annotations

from sqlalchemy import JSON, Float, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from forklift.db import Base


class ModelRow(Base):
    __tablename__ = "inference_models"

    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    arn: Mapped[str] = mapped_column(String(255))
    request: Mapped[dict] = mapped_column(JSON)  # validated CreateModel parameters (no secrets)
    resolved_image: Mapped[str] = mapped_column(String(512))  # registry/repo@sha256:... at CreateModel time
    resolution_time: Mapped[float] = mapped_column(Float)
    created_at: Mapped[float] = mapped_column(Float, index=True)
    created_by: Mapped[str | None] = mapped_column(String(256), nullable=True)  # the principal that created it


class EndpointConfigRow(Base):
    __tablename__ = "inference_endpoint_configs"

    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    arn: Mapped[str] = mapped_column(String(255))
    request: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[float] = mapped_column(Float, index=True)
    created_by: Mapped[str | None] = mapped_column(String(256), nullable=True)  # the principal that created it


class EndpointRow(Base):
    __tablename__ = "inference_endpoints"

    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    arn: Mapped[str] = mapped_column(String(255))
    config_name: Mapped[str] = mapped_column(String(63))  # the config being served (or being created)
    # Creating | InService | Updating | Deleting | Failed
    status: Mapped[str] = mapped_column(String(24), index=True)
    failure_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[float] = mapped_column(Float, index=True)
    modified_at: Mapped[float] = mapped_column(Float, index=True)
    # [{VariantName, ModelName, CurrentWeight, DesiredWeight, CurrentInstanceCount, DesiredInstanceCount,
    #   DeployedImages, VariantStatus, ...}] as DescribeEndpoint reports them
    variants: Mapped[list] = mapped_column(JSON, default=list)
    pending_config: Mapped[str | None] = mapped_column(String(63), nullable=True)  # UpdateEndpoint target
    pending_variants: Mapped[list | None] = mapped_column(JSON, nullable=True)  # UpdateEndpointWeightsAndCapacities
    generation: Mapped[int] = mapped_column(Integer, default=0)  # the fleet that serves traffic
    created_by: Mapped[str | None] = mapped_column(String(256), nullable=True)  # the principal that created it


class EndpointInstanceRow(Base):
    __tablename__ = "inference_endpoint_instances"

    container_name: Mapped[str] = mapped_column(String(100), primary_key=True)
    endpoint: Mapped[str] = mapped_column(String(63), index=True)
    variant: Mapped[str] = mapped_column(String(63))
    generation: Mapped[int] = mapped_column(Integer)
    address: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[float] = mapped_column(Float)
