"""SageMaker resource tags: AddTags, ListTags and DeleteTags on the resources this server has.

    tags = TagStore(database_url, exists=plane.has_resource)
    tags.add(arn, [{"Key": "team", "Value": "ml"}])     # overwrites a key it has; 50 at most
    page, after = tags.list(arn, after=None, limit=50)   # in the order keys were first added
    tags.delete(arn, ["team"])                           # keys it lacks are ignored

A resource's tags given at create time are written with its row (`replace_rows`, in the store's own
transaction) and removed with it (`drop_rows`), so a name used again never inherits the old tags.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from forklift.control.errors import ControlError, InvalidRequest
from forklift.control.tagrows import TagRow
from forklift.db import session_factory

MAX_TAGS = 50  # per resource, as on AWS
RESERVED_PREFIX = "aws:"


class UnknownResource(ControlError):
    """No training job, model, endpoint configuration or endpoint has that ARN (AWS: ValidationException)."""

    def __init__(self, arn: str):
        super().__init__(f"Resource {arn} does not exist: give ResourceArn as a Create* or Describe* call "
                         "returned it (a training job, model, endpoint configuration or endpoint of this server)")


class TooManyTags(ControlError):
    """A resource would hold more than MAX_TAGS tags (AWS: ResourceLimitExceeded)."""


def check_tags(tags: Iterable[Mapping[str, str]], field: str = "Tags") -> None:
    """Refuse keys in AWS's reserved namespace, which only AWS itself may set."""
    for tag in tags:
        if tag["Key"].lower().startswith(RESERVED_PREFIX):
            raise InvalidRequest(f"Tag key {tag['Key']!r} in {field} starts with {RESERVED_PREFIX!r}, which is "
                                 "reserved for AWS: choose a key without that prefix")


def replace_rows(session: Session, arn: str, tags: Sequence[Mapping[str, str]]) -> None:
    """Make `tags` the resource's only tags, in `session`'s transaction (a create)."""
    drop_rows(session, arn)
    _merge(session, arn, tags)


def drop_rows(session: Session, arn: str) -> None:
    """Remove every tag of the resource, in `session`'s transaction (a delete)."""
    session.execute(delete(TagRow).where(TagRow.resource_arn == arn))


def _merge(session: Session, arn: str, tags: Sequence[Mapping[str, str]]) -> None:
    check_tags(tags)
    have = {row.key: row for row in session.scalars(select(TagRow).where(TagRow.resource_arn == arn))}
    seq = max((row.seq for row in have.values()), default=0)
    for tag in tags:
        row = have.get(tag["Key"])
        if row is not None:
            row.value = tag.get("Value", "")
            continue
        seq += 1
        have[tag["Key"]] = row = TagRow(resource_arn=arn, key=tag["Key"], value=tag.get("Value", ""), seq=seq)
        session.add(row)
    if len(have) > MAX_TAGS:
        raise TooManyTags(f"Resource {arn} would have {len(have)} tags, more than the {MAX_TAGS} a resource may "
                          "have: delete some with DeleteTags first, or add fewer")


class TagStore:
    def __init__(self, database_url: str, exists: Callable[[str], bool],
                 sessions: sessionmaker[Session] | None = None):
        self._sessions = sessions or session_factory(database_url)
        self._exists = exists
        self._lock = threading.Lock()  # two adds of one new key would both insert it

    def _known(self, arn: str) -> str:
        # no resource's ARN holds a NUL (their names' patterns refuse it), and PostgreSQL refuses to compare one
        if "\x00" in arn or not self._exists(arn):
            raise UnknownResource(arn)
        return arn

    def add(self, arn: str, tags: Sequence[Mapping[str, str]]) -> None:
        self._known(arn)
        with self._lock, self._sessions.begin() as session:
            _merge(session, arn, tags)

    def list(self, arn: str, after: int | None, limit: int) -> tuple[list[dict[str, str]], int | None]:
        """Up to `limit` tags after position `after`, and the position to resume from (None: no more)."""
        self._known(arn)
        stmt = select(TagRow).where(TagRow.resource_arn == arn)
        if after is not None:
            stmt = stmt.where(TagRow.seq > after)
        with self._sessions() as session:
            rows = list(session.scalars(stmt.order_by(TagRow.seq, TagRow.key).limit(limit + 1)))
        page = rows[:limit]
        return [{"Key": r.key, "Value": r.value} for r in page], (page[-1].seq if len(rows) > limit else None)

    def delete(self, arn: str, keys: Iterable[str]) -> None:
        self._known(arn)
        with self._lock, self._sessions.begin() as session:
            session.execute(delete(TagRow).where(TagRow.resource_arn == arn, TagRow.key.in_(list(keys))))
