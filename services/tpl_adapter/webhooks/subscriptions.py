"""Registering the webhook subscriptions at the 3PL and keeping the secrets that sign them."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from sqlalchemy import delete, select

from libs.store import Database
from services.tpl_adapter.clients.tpl_api import TplApi
from services.tpl_adapter.store import WebhookSubscriptionRow

log = logging.getLogger(__name__)

TOPICS = ("order.shipped", "order.shipment.delivered", "return.completed")


class WebhookSecrets:
    """The signing secrets per topic, loaded from the database and kept in memory."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self.by_topic: dict[str, list[str]] = {}

    async def load(self) -> None:
        """Read every stored subscription's secret."""
        async with self._db.read() as session:
            rows = (await session.execute(select(WebhookSubscriptionRow))).scalars().all()
        by_topic: dict[str, list[str]] = {}
        for row in rows:
            by_topic.setdefault(row.topic, []).append(row.secret)
        self.by_topic = by_topic

    def for_topic(self, topic: str) -> list[str]:
        """Secrets a delivery of `topic` may be signed with."""
        return self.by_topic.get(topic, [])


async def register(db: Database, api: TplApi, url: str, secrets: WebhookSecrets) -> int:
    """Make sure one subscription per topic points at `url` and that we know its secret.

    Subscriptions of ours whose secret we do not know (created by a lost run) are deleted and
    made again; stored ones the 3PL no longer has are forgotten.

    Returns:
        How many subscriptions were created.
    """
    existing = await api.webhooks()
    async with db.read() as session:
        known = {
            r.subscription_id: r for r in (await session.execute(select(WebhookSubscriptionRow))).scalars()
        }
    at_tpl = {str(s["id"]): s for s in existing}
    created = 0
    keep: set[str] = set()
    for topic in TOPICS:
        ours = [s for s in existing if s["topic"] == topic and s["subscription_url"] == url]
        if any(str(s["id"]) in known for s in ours):
            keep.update(str(s["id"]) for s in ours if str(s["id"]) in known)
            continue
        for stale in ours:
            await api.delete_webhook(stale["id"])
        made = await api.create_webhook(topic, url, "retail-mesh tpl-adapter")
        async with db.transaction() as session:
            session.add(
                WebhookSubscriptionRow(
                    subscription_id=str(made["id"]),
                    topic=topic,
                    url=url,
                    secret=str(made["secret"]),
                    created_at=datetime.now(UTC),
                )
            )
        keep.add(str(made["id"]))
        created += 1
    gone = [sid for sid in known if sid not in at_tpl and sid not in keep]
    if gone:
        async with db.transaction() as session:
            await session.execute(
                delete(WebhookSubscriptionRow).where(WebhookSubscriptionRow.subscription_id.in_(gone))
            )
    await secrets.load()
    log.info("3PL webhook subscriptions registered", extra={"subscriptions_created": created})
    return created
