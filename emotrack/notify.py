"""Telling an operator about a bad night, the Prefect way (`emotrack serve --notify URL`): an
automation on the server posts to a webhook when a run of the nightly deployment fails or
crashes, or ends with more failed videos than a threshold (an event the flow emits).

The URL is a secret: it is kept in a Prefect Secret block (`emotrack-notify-url`), and in
the Webhook block that the automation's action calls (`emotrack-notify`, its URL a secret
field too: Prefect's CallWebhook action reads only a Webhook block). Neither is ever printed
or logged; the UI and the API show them masked.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any, cast
from uuid import UUID

FAILED_VIDEOS_EVENT = "emotrack.nightly.failed-videos"
RUN_ENDED_BADLY = ("prefect.flow-run.Failed", "prefect.flow-run.Crashed")
SECRET_BLOCK = "emotrack-notify-url"
WEBHOOK_BLOCK = "emotrack-notify"
# What the webhook receives: JSON, filled in by Prefect from the event (Jinja).
PAYLOAD = json.dumps(
    {
        "text": "emotrack: {{ event.event }} ({{ event.resource.name }})",
        "event": "{{ event.event }}",
        "resource": "{{ event.resource.id }}",
        "occurred": "{{ event.occurred }}",
        "failed_videos": "{{ event.payload.get('failed', '') }}",
        "threshold": "{{ event.payload.get('threshold', '') }}",
    }
)


def failed_videos_event(
    counts: dict[str, int], threshold: int | None, run_id: str | None, run_name: str | None
) -> dict[str, Any] | None:
    """The event (emit_event's arguments) for a run whose failed (unreadable) videos are
    more than `threshold`; None where they are not, or no threshold was set. (A video with
    an unexpected error fails the run itself.)"""
    failed = counts.get("failed", 0)
    if threshold is None or failed <= threshold:
        return None
    return {
        "event": FAILED_VIDEOS_EVENT,
        "resource": {
            "prefect.resource.id": f"emotrack.nightly-run.{run_id}",
            "prefect.resource.name": str(run_name),
        },
        "payload": {"failed": failed, "threshold": threshold},
    }


def automation_name(deployment: str) -> str:
    return f"emotrack: notify when {deployment} goes wrong"


def set_up_notifications(url: str, deployment_id: UUID, deployment: str) -> UUID:
    """The Secret and Webhook blocks for `url`, and the automation that calls the webhook for
    the deployment's bad nights (replacing one of the same name); returns its id."""
    from prefect.automations import Automation
    from prefect.blocks.system import Secret
    from prefect.blocks.webhook import Webhook
    from prefect.events.actions import CallWebhook
    from prefect.events.schemas.automations import EventTrigger, Posture
    from prefect.events.schemas.events import ResourceSpecification
    from prefect.types import SecretDict
    from pydantic import SecretStr

    # Prefect's block and automation methods are typed as maybe-coroutines: called from
    # synchronous code, they return their values.
    Secret(value=SecretStr(url)).save(SECRET_BLOCK, overwrite=True)
    webhook = Webhook(
        method="POST",
        url=SecretStr(url),
        headers=SecretDict({"Content-Type": "application/json"}),
    )
    block_id = cast(UUID, webhook.save(WEBHOOK_BLOCK, overwrite=True))
    name = automation_name(deployment)
    _delete_automations_named(name)
    automation = cast(
        Automation,
        Automation(
            name=name,
            description="Posts to the webhook in the Secret block emotrack-notify-url when a "
            f"run of {deployment} fails or crashes, or has more failed videos than its threshold.",
            trigger=EventTrigger(
                expect={*RUN_ENDED_BADLY, FAILED_VIDEOS_EVENT},
                match_related=ResourceSpecification(
                    {"prefect.resource.id": f"prefect.deployment.{deployment_id}"}
                ),
                posture=Posture.Reactive,
                threshold=1,
                within=timedelta(0),
            ),
            actions=[CallWebhook(block_document_id=block_id, payload=PAYLOAD)],
        ).create(),
    )
    return cast(UUID, automation.id)


def _delete_automations_named(name: str) -> None:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        for old in client.read_automations_by_name(name):
            client.delete_automation(old.id)
