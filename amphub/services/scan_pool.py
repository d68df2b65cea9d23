"""The scanner's processes, and the verdict of one file run in them.

A verdict is kept per content (LFS oid or git blob id) and scanner version: a commit's scan
reads only content not judged before.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import AsyncIterator
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

from amphub import db
from amphub.scan.findings import SCANNER_VERSION, VerdictJson
from amphub.services.hub import Hub
from amphub.services.scan_worker import scan_content
from amphub.services.worker_processes import leave_with_parent


@contextlib.asynccontextmanager
async def scan_processes(hub: Hub) -> AsyncIterator[None]:
    """Processes for scanning, so that a long scan never holds the server's event loop."""
    pool = ProcessPoolExecutor(
        hub.config.workers,
        mp_context=get_context("spawn"),
        initializer=leave_with_parent,
        initargs=(os.getpid(),),
    )
    hub.scan_pool = pool
    try:
        yield
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


async def scan_file(
    hub: Hub, name: str, file: Path | None, data: bytes | None, size: int
) -> VerdictJson:
    """The verdict of a file given by its path on disk or its bytes, from a scan process."""
    loop = asyncio.get_running_loop()
    source = str(file) if file else None
    return await loop.run_in_executor(hub.scan_pool, scan_content, name, source, data, size)


async def judge_stored_object(hub: Hub, name: str, oid: str, size: int) -> bool:
    """Scan an LFS object this process has just stored and keep the verdict; whether it did.

    Its bytes were proven to hash to its oid on the way in, so the commit's scan, which
    finds the verdict kept, need not hash them again. An object store's object is left to
    that scan (it would be read back whole), as is one judged before.
    """
    file = hub.objects.file(oid)
    if file is None or oid in await db.scan_verdicts(hub.db, [oid], SCANNER_VERSION):
        return False
    verdict = await scan_file(hub, name, file, None, size)
    await db.store_verdict(hub.db, oid, SCANNER_VERSION, json.dumps(verdict))
    return True
