"""Where media lives, chosen once from ``PHOTOS_STORAGE``: local disk (served by Django)
or a versioned S3 bucket (served by redirects to presigned URLs, deleted version by
version, uploaded to directly by the browser). Everything else asks ``media_storage()``
and never branches on the setting. Files are read and written through Django's
``default_storage`` (django-storages on S3); this adds what differs between the two."""

from __future__ import annotations

import re
from functools import cache
from typing import IO, Any, Iterator
from urllib.parse import urlsplit

from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError
from django.conf import settings
from django.core.exceptions import SuspiciousOperation
from django.core.files.storage import default_storage, storages
from django.http import FileResponse, HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from storages.utils import clean_name, safe_join


class StorageUnsupported(Exception):
    """This storage cannot do that (e.g. a presigned upload to local disk)."""


class EraseIncomplete(Exception):
    """Storage still holds some of what was to be erased; the erasure is tried again."""


# What S3 answers for an object (or version) that is not there.
MISSING = ("NoSuchKey", "NoSuchVersion", "404", "NotFound")
# CopyObject copies up to 5 GB; a larger video is copied in parts (still inside S3).
COPY_CONFIG = TransferConfig(multipart_threshold=5 * 1024**3, multipart_chunksize=512 * 1024**2)

UNSATISFIABLE = "unsatisfiable"
_RANGE = re.compile(r"^bytes=(\d{0,19})-(\d{0,19})$")  # 19 digits: past any file, short of int() trouble
RANGE_CHUNK = 64 * 1024


def byte_range(header: str, size: int) -> tuple[int, int] | str | None:
    """The inclusive (first, last) byte of a single ``Range: bytes=`` request, clipped
    to the file; UNSATISFIABLE when it starts past the end; None when there is none, it
    is malformed, or it asks for several ranges (then the whole file is the answer)."""
    match = _RANGE.match((header or "").strip())
    if not match or match[1] == match[2] == "" or size <= 0:
        return None
    if match[1] == "":  # the last N bytes
        suffix = int(match[2])
        return (max(0, size - suffix), size - 1) if suffix > 0 else UNSATISFIABLE
    start = int(match[1])
    end = min(int(match[2]), size - 1) if match[2] else size - 1
    if start >= size:
        return UNSATISFIABLE
    if end < start:
        return None
    return start, end


def _read_span(handle, length: int) -> Iterator[bytes]:
    try:
        while length > 0:
            chunk = handle.read(min(RANGE_CHUNK, length))
            if not chunk:
                break
            length -= len(chunk)
            yield chunk
    finally:
        handle.close()


class LocalMediaStorage:
    name = "local"
    # The browser can put files straight into storage (presigned POST).
    direct_uploads = False
    # Its objects can be listed (the AWS pipeline's backfill reads the bucket).
    lists_objects = False

    def origins(self) -> tuple[str, ...]:
        """The origins, besides the site's own, of the URLs this storage gives browsers
        (the Content-Security-Policy allows exactly these)."""
        return ()

    def response(self, name: str, *, content_type: str, disposition: str, range_header: str = "",
                 expires: int | None = None) -> HttpResponse:
        """The file itself, streamed (``expires`` is for presigned URLs: nothing expires here); FileNotFoundError if it is not there. A single
        byte range (``Range: bytes=a-b``, what a video player asks for to seek) is
        answered 206 with just those bytes, one that starts past the end 416; anything
        else gets the whole file (which HTTP allows)."""
        size = default_storage.size(name)
        span = byte_range(range_header, size)
        handle = default_storage.open(name, "rb")
        if span is None:
            response = FileResponse(handle, content_type=content_type)
        elif span == UNSATISFIABLE:
            handle.close()
            response = HttpResponse(status=416, content_type="text/plain")
            response["Content-Range"] = f"bytes */{size}"
        else:
            start, end = span
            handle.seek(start)
            response = StreamingHttpResponse(_read_span(handle, end - start + 1), status=206, content_type=content_type)
            response["Content-Range"] = f"bytes {start}-{end}/{size}"
            response["Content-Length"] = str(end - start + 1)
        response["Accept-Ranges"] = "bytes"
        response["X-Content-Type-Options"] = "nosniff"
        response["Cache-Control"] = "private, max-age=300"
        response["Content-Disposition"] = disposition
        return response

    def delete(self, name: str) -> None:
        """Erase ``name`` for good (every version where storage keeps versions), and check
        that nothing of it is left; EraseIncomplete if something is. A name that is not
        there is no error."""
        default_storage.delete(name)
        if default_storage.exists(name):
            raise EraseIncomplete(f"{name} is still there")

    def presigned_post(self, *, key: str, content_type: str, max_bytes: int, expires_in: int) -> dict[str, Any]:
        raise StorageUnsupported("Direct uploads need S3 storage.")

    def list_objects(self, prefix: str, *, start_after: str = "") -> Iterator[list[tuple[str, int, str]]]:
        """Pages of (key, size, etag) of the stored objects under ``prefix``, in key order."""
        raise StorageUnsupported("Listing objects is for S3 storage (the AWS pipeline's backfill).")

    def read_version(self, name: str, *, max_bytes: int) -> tuple[bytes, str]:
        """The current bytes of ``name`` (at most ``max_bytes`` + 1) and the version they
        are, so what was checked is exactly what is kept; FileNotFoundError if absent."""
        raise StorageUnsupported("Direct uploads need S3 storage.")

    def copy_version(self, name: str, version: str, *, to: str, content_type: str) -> None:
        """Copy that version of ``name`` to ``to`` (a new object, stored with ``content_type``)."""
        raise StorageUnsupported("Direct uploads need S3 storage.")

    def download_version(self, name: str, version: str, into: IO[bytes], *, max_bytes: int) -> int:
        """Write that version of ``name`` into ``into`` chunk by chunk (never whole in
        memory), at most ``max_bytes`` + 1 bytes; the number written. FileNotFoundError if absent."""
        raise StorageUnsupported("Direct uploads need S3 storage.")

    # Multipart uploads (large videos, straight from the browser, resumable): the app
    # starts one, signs a URL per part, lists what arrived and completes or aborts it.
    def multipart_start(self, name: str, *, content_type: str) -> str:
        """A new multipart upload to ``name``; its upload id."""
        raise StorageUnsupported("Direct uploads need S3 storage.")

    def multipart_part_urls(self, name: str, upload_id: str, lengths: dict[int, int], *,
                            expires_in: int) -> dict[int, str]:
        """A presigned UploadPart URL per part number, each signed for exactly its length
        (S3 refuses a PUT of any other size)."""
        raise StorageUnsupported("Direct uploads need S3 storage.")

    def current(self, name: str) -> tuple[int, str] | None:
        """(size, version) of the object now at ``name``, or None if there is none."""
        raise StorageUnsupported("Direct uploads need S3 storage.")

    def multipart_parts(self, name: str, upload_id: str) -> list[tuple[int, int, str]]:
        """(part number, size, ETag) of every part that arrived, in order; FileNotFoundError
        when the upload is no more (completed, aborted, or expired by the lifecycle rule)."""
        raise StorageUnsupported("Direct uploads need S3 storage.")

    def multipart_complete(self, name: str, upload_id: str, parts: list[tuple[int, int, str]]) -> str:
        """Join exactly these parts into the object; the version it became."""
        raise StorageUnsupported("Direct uploads need S3 storage.")

    def multipart_abort(self, name: str, upload_id: str) -> None:
        raise StorageUnsupported("Direct uploads need S3 storage.")


class S3MediaStorage(LocalMediaStorage):
    name = "s3"
    direct_uploads = True
    lists_objects = True

    @property
    def client(self) -> Any:
        """The S3 client django-storages made from the settings (it keeps one per thread)."""
        return default_storage.connection.meta.client

    @property
    def bucket(self) -> str:
        return default_storage.bucket_name

    def origins(self) -> tuple[str, ...]:
        """Read from URLs the storage's own client signs, a GET and a POST, so the policy
        names the host browsers are really sent to: without an endpoint URL boto3 signs
        for ``https://<bucket>.s3.amazonaws.com`` in every region, not the regional host.
        Signing needs no network; it is redone only when the storage is rebuilt."""
        backend = storages["default"]
        if getattr(self, "_origins_of", None) is not backend:
            urls = (default_storage.url("uploads/origin"),
                    self.client.generate_presigned_post(Bucket=self.bucket, Key=self.object_key("incoming/origin"))["url"])
            self._origins = tuple(dict.fromkeys(f"{u.scheme}://{u.netloc}" for u in map(urlsplit, urls)))
            self._origins_of = backend
        return self._origins

    def object_key(self, name: str) -> str:
        """The S3 key of a storage name (under AWS_LOCATION, never outside it)."""
        try:
            return safe_join(default_storage.location, clean_name(name))
        except ValueError:
            raise SuspiciousOperation(f"Attempted access to {name!r} denied.") from None

    def response(self, name: str, *, content_type: str, disposition: str, range_header: str = "",
                 expires: int | None = None) -> HttpResponse:
        """A redirect to a short-lived presigned URL (content type as stored; S3 itself
        answers byte ranges). ``expires``: seconds the URL lasts, for a video the player
        keeps asking ranges of while it plays (AWS_QUERYSTRING_EXPIRE otherwise)."""
        return HttpResponseRedirect(default_storage.url(name, parameters={"ResponseContentDisposition": disposition},
                                                        expire=expires))

    def delete(self, name: str) -> None:
        """Every version and delete marker of the object, not just a new delete marker over
        the old bytes (which the bucket would keep 30 days). DeleteObjects answers 200
        even when some deletions failed: its ``Errors`` are read, and the key is listed
        again afterwards; EraseIncomplete unless no version is left."""
        key = self.object_key(name)
        for page in self._version_pages(key):
            if page:
                response = self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": page, "Quiet": True})
                if errors := response.get("Errors"):
                    raise EraseIncomplete(f"{key}: {len(errors)} version(s) not deleted, first: "
                                          f"{errors[0].get('Code')} {errors[0].get('Message', '')}".strip())
        if left := sum(len(page) for page in self._version_pages(key)):
            raise EraseIncomplete(f"{key}: {left} version(s) still listed after the delete")

    def _version_pages(self, key: str) -> Iterator[list[dict[str, str]]]:
        """Pages of {Key, VersionId} for every version and delete marker of exactly ``key``."""
        for page in self.client.get_paginator("list_object_versions").paginate(Bucket=self.bucket, Prefix=key):
            yield [{"Key": key, "VersionId": v["VersionId"]}
                   for v in page.get("Versions", []) + page.get("DeleteMarkers", []) if v["Key"] == key]

    def presigned_post(self, *, key: str, content_type: str, max_bytes: int, expires_in: int) -> dict[str, Any]:
        """A POST the browser can make once to put one file at ``key``, with S3 itself
        enforcing the content type and the size."""
        return self.client.generate_presigned_post(
            Bucket=self.bucket, Key=self.object_key(key), Fields={"Content-Type": content_type},
            Conditions=[{"Content-Type": content_type}, ["content-length-range", 1, max_bytes]], ExpiresIn=expires_in,
        )

    def read_version(self, name: str, *, max_bytes: int) -> tuple[bytes, str]:
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self.object_key(name))
        except self.client.exceptions.NoSuchKey:
            raise FileNotFoundError(name) from None
        with response["Body"] as body:
            return body.read(max_bytes + 1), response.get("VersionId") or "null"

    def copy_version(self, name: str, version: str, *, to: str, content_type: str) -> None:
        """One CopyObject up to 5 GB (its limit); a multipart copy (UploadPartCopy, by
        boto3's transfer manager) for a larger video. Both copy inside S3."""
        source = {"Bucket": self.bucket, "Key": self.object_key(name), **_version(version)}
        self.client.copy(source, self.bucket, self.object_key(to),
                         ExtraArgs={"MetadataDirective": "REPLACE", "ContentType": content_type,
                                    "CacheControl": "private, max-age=300"},
                         Config=COPY_CONFIG)

    def download_version(self, name: str, version: str, into: IO[bytes], *, max_bytes: int) -> int:
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self.object_key(name), **_version(version))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in MISSING:
                raise FileNotFoundError(name) from None
            raise
        written, body = 0, response["Body"]
        try:
            for chunk in body.iter_chunks(RANGE_CHUNK * 16):
                into.write(chunk[: max_bytes + 1 - written])
                written += min(len(chunk), max_bytes + 1 - written)
                if written > max_bytes:
                    break
        finally:
            body.close()
        return written

    def multipart_start(self, name: str, *, content_type: str) -> str:
        return self.client.create_multipart_upload(Bucket=self.bucket, Key=self.object_key(name),
                                                   ContentType=content_type)["UploadId"]

    def multipart_part_urls(self, name: str, upload_id: str, lengths: dict[int, int], *,
                            expires_in: int) -> dict[int, str]:
        key = self.object_key(name)
        return {n: self.client.generate_presigned_url(
                    "upload_part", Params={"Bucket": self.bucket, "Key": key, "UploadId": upload_id, "PartNumber": n,
                                           "ContentLength": length},
                    ExpiresIn=expires_in)
                for n, length in lengths.items()}

    def current(self, name: str) -> tuple[int, str] | None:
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self.object_key(name))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in MISSING:
                return None
            raise
        return int(head["ContentLength"]), head.get("VersionId") or "null"

    def multipart_parts(self, name: str, upload_id: str) -> list[tuple[int, int, str]]:
        pages = self.client.get_paginator("list_parts").paginate(Bucket=self.bucket, Key=self.object_key(name),
                                                                 UploadId=upload_id)
        try:
            return [(p["PartNumber"], p["Size"], p["ETag"]) for page in pages for p in page.get("Parts", [])]
        except self.client.exceptions.NoSuchUpload:
            raise FileNotFoundError(name) from None

    def multipart_complete(self, name: str, upload_id: str, parts: list[tuple[int, int, str]]) -> str:
        try:
            response = self.client.complete_multipart_upload(
                Bucket=self.bucket, Key=self.object_key(name), UploadId=upload_id,
                MultipartUpload={"Parts": [{"PartNumber": n, "ETag": etag} for n, _, etag in parts]})
        except self.client.exceptions.NoSuchUpload:
            raise FileNotFoundError(name) from None
        return response.get("VersionId") or "null"

    def multipart_abort(self, name: str, upload_id: str) -> None:
        try:
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=self.object_key(name), UploadId=upload_id)
        except self.client.exceptions.NoSuchUpload:
            pass  # completed, aborted or expired already: nothing left to abort

    def list_objects(self, prefix: str, *, start_after: str = "") -> Iterator[list[tuple[str, int, str]]]:
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix, **({"StartAfter": start_after} if start_after else {}))
        for page in pages:
            yield [(o["Key"], o.get("Size", 0), o.get("ETag", "").strip('"')) for o in page.get("Contents", [])]


def _version(version: str) -> dict[str, str]:
    """The VersionId argument for a version read back from S3: none for an unversioned
    bucket's "null" (HeadObject refuses it there)."""
    return {"VersionId": version} if version != "null" else {}


STORAGES = {"local": LocalMediaStorage, "s3": S3MediaStorage}


def media_storage() -> LocalMediaStorage:
    """The storage ``PHOTOS_STORAGE`` names (one instance per name)."""
    return _build(settings.PHOTOS_STORAGE)


@cache
def _build(name: str) -> LocalMediaStorage:
    return STORAGES[name]()
