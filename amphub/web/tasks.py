"""The caller's tasks, whose progress the page follows through the JSON API."""

from __future__ import annotations

from aiohttp import web

from amphub.api import tasks as tasks_api
from amphub.http.access import actor
from amphub.web.view import page

FINISHED = ("succeeded", "failed", "canceled")


async def get_tasks_page(request: web.Request) -> web.Response:
    """Tasks the caller started (`?all=1`: every task they may see), newest first."""
    found = await tasks_api.tasks_answer(request)
    everyone = request.query.get("all") == "1"
    me = actor(request).name
    tasks = [task for task in found["tasks"] if everyone or task["created_by"] == me]
    for task in tasks:
        task["finished"] = task["status"] in FINISHED
    return page(request, "tasks.html", tasks=tasks, everyone=everyone)
