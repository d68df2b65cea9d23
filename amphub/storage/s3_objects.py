"""LFS objects in an S3-compatible bucket (AWS S3, MinIO, Ceph RGW, SeaweedFS, Garage).

Talks to the store through aiobotocore: botocore's signer and request models on aiohttp,
so a request waiting on the store holds no thread (only hashing does, briefly). Objects
are keys `PREFIX/ab/cd/<oid>`. An upload through amphub is hashed on the way; it becomes
visible under its key only once its hash is right: a small one is put whole after the
check, a large one goes in parts whose multipart upload is completed only after it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import secrets
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from functools import partial
from typing import Any

from aiobotocore.session import get_session
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError

from amphub.config import Config
from amphub.storage.objects import (
    OID,
    PIECE,
    ObjectMismatch,
    Runner,
    StoreUnusable,
    check_oid,
)

# A bucket has no free-space figure: the quota is what limits uploads.
UNLIMITED = 2**62
# A multipart upload untouched this long was given up (or its node died).
LEFTOVER_SECONDS = 24 * 3600
NOT_FOUND = ("404", "NoSuchKey", "NotFound")
# The largest object one PUT (or one copy) takes.
SINGLE_PUT_LIMIT = 5 * 1024**3
# Under the prefix: objects stored already, put again by presigned PUT, until verified.
INCOMING = "incoming"
# The metadata key of an object put straight to its key: the ticket of the upload that did.
TICKET = "amphub-ticket"


def split_location(storage: str) -> tuple[str, str]:
    """(bucket, key prefix ending in / or empty) of an s3://BUCKET[/PREFIX] setting."""
    bucket, _, prefix = storage.removeprefix("s3://").partition("/")
    prefix = prefix.strip("/")
    return bucket, f"{prefix}/" if prefix else ""


def checksum(oid: str) -> str:
    """The oid as S3's x-amz-checksum-sha256 value (base64 of the digest)."""
    return base64.b64encode(bytes.fromhex(oid)).decode()


class S3ObjectStore:
    """Objects in `config.storage`'s bucket; `run` gives threads for hashing."""

    def __init__(self, config: Config, run: Runner) -> None:
        self.config = config
        self.run = run
        self.tmp = config.tmp_dir
        self.bucket, self.prefix = split_location(config.storage)
        self.part_size = config.s3_part_size
        self.direct_uploads = False
        self._stack = contextlib.AsyncExitStack()
        self._client: Any = None

    @property
    def client(self) -> Any:
        """The connected S3 client."""
        if self._client is None:
            raise StoreUnusable("the object store is not opened")
        return self._client

    def key(self, oid: str) -> str:
        """Where an object lives in the bucket."""
        check_oid(oid)
        return f"{self.prefix}{oid[:2]}/{oid[2:4]}/{oid}"

    async def open(self) -> None:
        """Connect, and check that the bucket is there and takes writes."""
        config = self.config
        session = get_session()
        self._client = await self._stack.enter_async_context(
            session.create_client(
                "s3",
                endpoint_url=config.s3_endpoint,
                region_name=config.s3_region,
                aws_access_key_id=config.s3_access_key_id,
                aws_secret_access_key=config.s3_secret_access_key,
                config=BotoConfig(
                    signature_version="s3v4",
                    s3={"addressing_style": config.s3_addressing},
                    retries={"max_attempts": 3, "mode": "standard"},
                    request_checksum_calculation="when_required",
                    response_checksum_validation="when_required",
                ),
            )
        )
        probe = f"{self.prefix}amphub-probe/{secrets.token_hex(8)}"
        where = f"bucket {self.bucket} at {config.s3_endpoint or 'AWS S3'}"
        try:
            await self.client.head_bucket(Bucket=self.bucket)
            await self.client.put_object(Bucket=self.bucket, Key=probe, Body=b"probe")
            await self.client.delete_object(Bucket=self.bucket, Key=probe)
        except ClientError as exc:
            await self.close()
            error = exc.response.get("Error", {})
            raise StoreUnusable(
                f"the {where} cannot be used: {error.get('Code')} {error.get('Message', '')}"
                " (is it created, and may these credentials read and write it?)"
            ) from None
        except (BotoCoreError, OSError) as exc:
            await self.close()
            raise StoreUnusable(f"the {where} cannot be reached: {exc}") from None

    async def reachable(self) -> None:
        """Return once the bucket answered a HEAD; raises what the client met otherwise."""
        await self.client.head_bucket(Bucket=self.bucket)

    async def close(self) -> None:
        """Close the connections."""
        self._client = None
        await self._stack.aclose()

    def file(self, oid: str) -> None:
        """None: the bytes are not on a local disk."""
        return None

    async def size(self, oid: str) -> int | None:
        """The stored object's size (a HEAD request), None if it is not stored."""
        head = await self._head(oid)
        return None if head is None else int(head["ContentLength"])

    async def written_ago(self, oid: str) -> float | None:
        """Seconds since the object was last written, by the store's clock; None if absent."""
        head = await self._head(oid)
        return None if head is None else time.time() - head["LastModified"].timestamp()

    async def _head(self, oid: str) -> dict[str, Any] | None:
        try:
            head: dict[str, Any] = await self.client.head_object(
                Bucket=self.bucket, Key=self.key(oid)
            )
        except ClientError as exc:
            if _not_found(exc):
                return None
            raise
        return head

    async def read(self, oid: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """The object's bytes from `start` up to `end` (exclusive), streamed from the bucket."""
        if end is not None and end <= start:
            return
        span = f"bytes={start}-{'' if end is None else end - 1}"
        answer = await self.client.get_object(Bucket=self.bucket, Key=self.key(oid), Range=span)
        async with answer["Body"] as body:
            async for piece in body.iter_chunks(PIECE):
                yield piece

    async def download_url(self, oid: str, seconds: int, disposition: str | None = None) -> str:
        """A presigned GET URL of the object, good for `seconds`."""
        params = {"Bucket": self.bucket, "Key": self.key(oid)}
        if disposition:
            params["ResponseContentDisposition"] = disposition
        url: str = await self.client.generate_presigned_url(
            "get_object", Params=params, ExpiresIn=seconds
        )
        return url

    def incoming_key(self, oid: str, ticket: str) -> str:
        """Where an upload by presigned PUT of an object stored already lands until verified."""
        return f"{self.prefix}{INCOMING}/{ticket}/{check_oid(oid)}"

    async def presign_upload(
        self, oid: str, size: int, ticket: str, seconds: int
    ) -> tuple[str, dict[str, str]] | None:
        """A presigned PUT whose signature covers x-amz-checksum-sha256, the oid in base64.

        A store that checks signatures and checksums then takes no other bytes: the PUT
        must send the header (it is signed) and the body must hash to it. Whether this
        store does is for the start-up probe to prove (`direct_uploads`). Only the client
        that put the bytes may have them linked to its model (an oid alone, known from
        elsewhere, links nothing): an object not stored yet goes straight to its key, with
        the upload's ticket as signed metadata that `adopt` checks; one stored already goes
        under the ticket and is copied into place at `adopt`. An overwrite could only
        write identical bytes, but it would replace the ticket of another model's upload
        of the same object waiting for its verify, and make the store rewrite bytes that
        downloads may be reading. None past S3's single PUT (and copy) limit: such an
        object goes through amphub, in parts.
        """
        if size > SINGLE_PUT_LIMIT:
            return None
        params: dict[str, Any] = {"Bucket": self.bucket, "ChecksumSHA256": checksum(oid)}
        headers = {"x-amz-checksum-sha256": checksum(oid)}
        if await self._head(oid) is None:
            params |= {"Key": self.key(oid), "Metadata": {TICKET: ticket}}
            headers[f"x-amz-meta-{TICKET}"] = ticket
        else:
            params["Key"] = self.incoming_key(oid, ticket)
        url: str = await self.client.generate_presigned_url(
            "put_object", Params=params, ExpiresIn=seconds
        )
        return url, headers

    async def adopt(self, oid: str, ticket: str) -> int | None:
        """The size of an object put by a presigned PUT of `ticket`, once it is in its place.

        Put straight to its key, it is there already; put under the ticket, it is copied
        into place (in the store) and dropped. None if this upload put nothing: another
        model's upload of the same object to its key may have come last.
        """
        head = await self._head(oid)
        if head is not None and head.get("Metadata", {}).get(TICKET) == ticket:
            return int(head["ContentLength"])
        incoming = self.incoming_key(oid, ticket)
        try:
            head = await self.client.head_object(Bucket=self.bucket, Key=incoming)
        except ClientError as exc:
            if _not_found(exc):
                return None
            raise
        source = {"Bucket": self.bucket, "Key": incoming}
        await self.client.copy_object(Bucket=self.bucket, Key=self.key(oid), CopySource=source)
        await self.client.delete_object(Bucket=self.bucket, Key=incoming)
        return int(head["ContentLength"])

    async def open_upload(self, oid: str, size: int) -> S3Upload:
        """Start receiving an object, to be hashed on the way."""
        return S3Upload(self, check_oid(oid), size)

    async def put_group(self, objects: Sequence[tuple[str, bytes]]) -> list[Exception | None]:
        """Check and store small objects received whole, all at once."""

        async def put(oid: str, data: bytes) -> None:
            digest = await self.run(lambda: hashlib.sha256(data).hexdigest())
            if digest != check_oid(oid):
                raise ObjectMismatch("the content does not match its oid (sha256)")
            await self.client.put_object(Bucket=self.bucket, Key=self.key(oid), Body=data)

        outcomes = await asyncio.gather(
            *(put(oid, data) for oid, data in objects), return_exceptions=True
        )
        return [_failure(outcome) for outcome in outcomes]

    async def prepare_folders(self, oids: Iterable[str]) -> None:
        """Nothing: a bucket has no folders."""

    async def remove(self, oid: str) -> None:
        """Delete an object if it is there."""
        await self.client.delete_object(Bucket=self.bucket, Key=self.key(oid))

    async def intact(self, oid: str, size: int) -> bool:
        """Whether the object has `size` bytes that hash to its oid (all streamed and hashed)."""
        if await self.size(oid) != size:
            return False
        digest = hashlib.sha256()
        async for piece in self.read(oid):
            await self.run(partial(digest.update, piece))
        return digest.hexdigest() == oid

    async def quarantine(self, oid: str) -> None:
        """Copy a damaged object to PREFIX/quarantine/<oid> and delete it from its place."""
        source = {"Bucket": self.bucket, "Key": self.key(oid)}
        target = f"{self.prefix}quarantine/{oid}"
        try:
            await self.client.copy_object(Bucket=self.bucket, Key=target, CopySource=source)
        except ClientError as exc:
            if not _not_found(exc):
                raise
        await self.remove(oid)

    async def free_bytes(self) -> int:
        """A bucket takes what it is given: the quota is the limit."""
        return UNLIMITED

    async def stored(self) -> AsyncIterator[tuple[str, int, float]]:
        """(oid, size, seconds since it was written) of every object, as the bucket lists them."""
        now = time.time()
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.prefix
        )
        async for page in pages:
            for item in page.get("Contents", []):
                first, second, oid = (item["Key"][len(self.prefix) :].split("/") + ["", ""])[:3]
                if OID.fullmatch(oid) and (first, second) == (oid[:2], oid[2:4]):
                    yield oid, int(item["Size"]), now - item["LastModified"].timestamp()

    async def scratch(self, older_than: float) -> list[str]:
        """Uploads started `older_than` seconds ago or more and never finished.

        Multipart uploads, as `key upload-id`, and objects put by presigned PUT under a
        ticket and never verified, as their key. One put straight to its key and never
        verified is an object no model has, as `amphub doctor` reports it.
        """
        found = []
        now = time.time()
        incoming = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=f"{self.prefix}{INCOMING}/"
        )
        async for page in incoming:
            for item in page.get("Contents", []):
                if now - item["LastModified"].timestamp() >= older_than:
                    found.append(item["Key"])
        pages = self.client.get_paginator("list_multipart_uploads").paginate(
            Bucket=self.bucket, Prefix=self.prefix
        )
        async for page in pages:
            for upload in page.get("Uploads", []):
                if now - upload["Initiated"].timestamp() >= older_than:
                    found.append(f"{upload['Key']} {upload['UploadId']}")
        return found

    async def remove_scratch(self, found: list[str]) -> None:
        """Abort the multipart uploads `scratch` found."""
        for item in found:
            key, _, upload_id = item.partition(" ")
            with contextlib.suppress(ClientError):
                if upload_id:
                    await self.client.abort_multipart_upload(
                        Bucket=self.bucket, Key=key, UploadId=upload_id
                    )
                else:
                    await self.client.delete_object(Bucket=self.bucket, Key=key)

    async def remove_leftovers(self) -> int:
        """Abort multipart uploads untouched for a day: other nodes may be uploading now."""
        found = await self.scratch(LEFTOVER_SECONDS)
        await self.remove_scratch(found)
        return len(found)


class S3Upload:
    """One object on its way to the bucket, hashed as it comes.

    Bytes are held until a part's worth has come; an object of one part is put whole at
    commit, a larger one goes in parts of a multipart upload completed only at commit.
    """

    def __init__(self, store: S3ObjectStore, oid: str, size: int) -> None:
        self.store = store
        self.oid = oid
        self.size = size
        self.received = 0
        self._hash = hashlib.sha256()
        self._held: list[bytes] = []
        self._held_bytes = 0
        self._upload_id: str | None = None
        self._parts: list[dict[str, Any]] = []

    def accept(self, length: int) -> None:
        """Count a piece before it is added; refuses more than announced."""
        self.received += length
        if self.received > self.size:
            raise ObjectMismatch(f"more than the announced {self.size} bytes were sent")

    async def add(self, data: bytes) -> None:
        """Hash a piece on a thread while a full part, if there is one, goes to the bucket."""
        self._held.append(data)
        self._held_bytes += len(data)
        hashed = self.store.run(partial(self._hash.update, data))
        if self._held_bytes >= self.store.part_size:
            part, self._held, self._held_bytes = b"".join(self._held), [], 0
            await asyncio.gather(hashed, self._send_part(part))
        else:
            await hashed

    async def _send_part(self, part: bytes) -> None:
        client, bucket, key = self.store.client, self.store.bucket, self.store.key(self.oid)
        if self._upload_id is None:
            started = await client.create_multipart_upload(Bucket=bucket, Key=key)
            self._upload_id = started["UploadId"]
        number = len(self._parts) + 1
        sent = await client.upload_part(
            Bucket=bucket, Key=key, UploadId=self._upload_id, PartNumber=number, Body=part
        )
        self._parts.append({"PartNumber": number, "ETag": sent["ETag"]})

    async def commit(self) -> None:
        """Check size and hash, then make the object visible; raises ObjectMismatch if wrong."""
        try:
            if self.received != self.size:
                raise ObjectMismatch(f"received {self.received} bytes, expected {self.size}")
            if self._hash.hexdigest() != self.oid:
                raise ObjectMismatch("the content does not match its oid (sha256)")
            client, bucket, key = self.store.client, self.store.bucket, self.store.key(self.oid)
            rest, self._held = b"".join(self._held), []
            if self._upload_id is None:
                await client.put_object(Bucket=bucket, Key=key, Body=rest)
                return
            if rest:
                await self._send_part(rest)
            await client.complete_multipart_upload(
                Bucket=bucket,
                Key=key,
                UploadId=self._upload_id,
                MultipartUpload={"Parts": self._parts},
            )
            self._upload_id = None
        except BaseException:
            await self.abort()
            raise

    async def abort(self) -> None:
        """Drop what was received: the held bytes and any parts sent."""
        self._held = []
        if self._upload_id is not None:
            upload_id, self._upload_id = self._upload_id, None
            with contextlib.suppress(ClientError, BotoCoreError):
                await self.store.client.abort_multipart_upload(
                    Bucket=self.store.bucket, Key=self.store.key(self.oid), UploadId=upload_id
                )


def _not_found(exc: ClientError) -> bool:
    return str(exc.response.get("Error", {}).get("Code")) in NOT_FOUND


def _failure(outcome: object) -> Exception | None:
    if isinstance(outcome, Exception):
        return outcome
    if isinstance(outcome, BaseException):  # a cancellation
        raise outcome
    return None
