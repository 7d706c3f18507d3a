"""Image members: the projects a shared image is offered to.

The owner adds and removes members; only the member project itself accepts or rejects the
offer (Glance: the owner may not decide for the consumer). A member sees only its own
membership; the owner sees them all.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kumo.core.errors import BadRequest, Conflict, Forbidden, NotFound, TooLarge
from kumo.core.images import fields
from kumo.core.images.images import get_image, owned
from kumo.core.policy import Context, allowed, enforce
from kumo.db import models as m
from kumo.db.types import utcnow


def _shared(image: m.Image) -> None:
    if image.visibility != "shared":
        raise Forbidden(
            f"Only shared images have members (image {image.id} is {image.visibility})."
        )


def _is_owner(ctx: Context, image: m.Image) -> bool:
    return ctx.is_admin or (ctx.project_id is not None and ctx.project_id == image.owner)


def _member_not_found(image_id: str, member_id: str) -> NotFound:
    return NotFound(f"{member_id} is not a member of image {image_id}.")


def list_members(session: Session, ctx: Context, image_id: str) -> list[m.ImageMember]:
    image = get_image(session, ctx, image_id)
    enforce(ctx, "image:get_members")
    _shared(image)
    stmt = select(m.ImageMember).where(m.ImageMember.image_id == image.id)
    if not _is_owner(ctx, image):
        stmt = stmt.where(m.ImageMember.member == ctx.project_id)
    return list(session.scalars(stmt.order_by(m.ImageMember.created_at, m.ImageMember.member)))


def get_member(session: Session, ctx: Context, image_id: str, member_id: str) -> m.ImageMember:
    image = get_image(session, ctx, image_id)
    enforce(ctx, "image:get_members")
    _shared(image)
    row = session.get(m.ImageMember, (image.id, member_id))
    if row is None or not (_is_owner(ctx, image) or member_id == ctx.project_id):
        raise _member_not_found(image_id, member_id)
    return row


def add_member(session: Session, ctx: Context, image_id: str, member_id: str) -> m.ImageMember:
    image = owned(session, ctx, image_id, "image:add_member")
    _shared(image)
    if session.get(m.ImageMember, (image.id, member_id)) is not None:
        raise Conflict(f"Member {member_id} is duplicated for image {image_id}")
    count = session.scalar(
        select(func.count()).select_from(m.ImageMember).where(m.ImageMember.image_id == image.id)
    )
    if (count or 0) >= fields.MAX_MEMBERS:
        raise TooLarge(f"Maximum number of image members exceeded: maximum {fields.MAX_MEMBERS}.")
    now = utcnow()
    row = m.ImageMember(
        image_id=image.id, member=member_id, status="pending", created_at=now, updated_at=now
    )
    session.add(row)
    session.flush()
    return row


def update_member(
    session: Session, ctx: Context, image_id: str, member_id: str, status: object
) -> m.ImageMember:
    row = get_member(session, ctx, image_id, member_id)
    if not (ctx.is_admin or member_id == ctx.project_id) or not allowed(
        ctx, "image:modify_member", {"project_id": member_id}
    ):
        raise Forbidden("You are not permitted to modify 'status' on this image member.")
    if status not in fields.MEMBER_STATUSES:
        raise BadRequest(
            f"Invalid status: {status!r}; it must be one of {', '.join(fields.MEMBER_STATUSES)}."
        )
    row.status = str(status)
    row.updated_at = utcnow()
    session.flush()
    return row


def delete_member(session: Session, ctx: Context, image_id: str, member_id: str) -> None:
    image = get_image(session, ctx, image_id)
    _shared(image)
    row = session.get(m.ImageMember, (image.id, member_id))
    if row is None or not (_is_owner(ctx, image) or member_id == ctx.project_id):
        raise _member_not_found(image_id, member_id)
    if not allowed(ctx, "image:delete_member", {"project_id": image.owner}):
        raise Forbidden("You are not authorized to complete delete_member action.")
    session.delete(row)
    session.flush()
