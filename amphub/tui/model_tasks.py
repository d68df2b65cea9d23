"""Starting a scan, a sync or a deploy of a model: the form, the request, the news."""

from __future__ import annotations

import json

from textual.widget import Widget

from amphub.tui.console import console_of
from amphub.tui.forms import ChoiceField, FormScreen, Invalid, NumberField, Submit, TextField
from amphub.tui.messages import TaskStarted

DEFAULT_REF = "master"


async def _peer_names(owner: Widget, kind: str) -> tuple[str, ...] | None:
    console = console_of(owner)
    peers = await console.ask(console.client.peers(kind, check=False))  # names only
    return None if peers is None else tuple(peer["name"] for peer in peers)


def _post(owner: Widget, space: str, model: str, kind: str) -> Submit:
    """The form's way to queue the task from its values."""
    client = console_of(owner).client

    async def post(values: dict) -> dict:
        return await client.start_task(space, model, kind, values)

    return post


async def _start(owner: Widget, form: FormScreen) -> None:
    task = await owner.app.push_screen_wait(form)
    if task is not None:
        owner.post_message(TaskStarted(task))
        owner.notify(f"{task['kind']} of {task['model']} queued as task {task['id']}")


async def start_scan(owner: Widget, space: str, model: str) -> None:
    """Ask for the ref and queue a security scan of it."""
    await _start(
        owner,
        FormScreen(
            f"Scan {space}/{model}",
            [TextField("ref", "Branch, tag or commit", DEFAULT_REF)],
            _post(owner, space, model, "scans"),
            action="Start scan",
        ),
    )


async def start_sync(owner: Widget, space: str, model: str) -> None:
    """Ask for the ref and the zone, and queue a sync to that zone."""
    zones = await _peer_names(owner, "zones")
    if zones is None:
        return
    if not zones:
        owner.notify("there is no zone to sync to; add one in the Zones tab", severity="warning")
        return
    await _start(
        owner,
        FormScreen(
            f"Sync {space}/{model}",
            [
                TextField("ref", "Branch, tag or commit", DEFAULT_REF),
                ChoiceField("zone", "Zone", zones),
            ],
            _post(owner, space, model, "syncs"),
            action="Start sync",
        ),
    )


async def start_deploy(owner: Widget, space: str, model: str) -> None:
    """Ask for the ref, target, service name, replicas and parameters, and queue a deploy."""
    targets = await _peer_names(owner, "deploy-targets")
    if targets is None:
        return
    if not targets:
        owner.notify("there is no deploy target; add one in the Targets tab", severity="warning")
        return
    post = _post(owner, space, model, "deployments")

    async def deploy(values: dict) -> dict:
        try:
            params = json.loads(values["params"]) if values["params"] else {}
        except ValueError:
            params = None
        if not isinstance(params, dict):
            raise Invalid('Parameters must be a JSON object, e.g. {"gpu": 1}')
        return await post({**values, "params": params})

    await _start(
        owner,
        FormScreen(
            f"Deploy {space}/{model}",
            [
                TextField("ref", "Branch, tag or commit", DEFAULT_REF),
                ChoiceField("target", "Target", targets),
                TextField("service", "Service name", model.lower()),
                NumberField("replicas", "Replicas"),
                TextField(
                    "params", "Parameters", placeholder='JSON, e.g. {"gpu": 1}', required=False
                ),
            ],
            deploy,
            action="Start deploy",
        ),
    )
