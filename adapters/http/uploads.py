"""What the upload and download routes share: checking uploads, serving verified content.

An upload is checked completely before anything is stored: its name (a plain file name,
no path, no NUL, control characters or direction marks), its size, and what it is by its
bytes (PDF, JPEG or PNG; the declared content type and the name's extension are ignored).
Every refusal is a problem naming the file by its position (``files.2``), never by its
name, which may hold personal data.

Downloads are verified against the hash and size the event recorded before the first byte
is sent; the bytes are streamed in chunks, and checked again as they go.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any, Final
from uuid import UUID

from fastapi import FastAPI, Request, UploadFile
from fastapi.responses import JSONResponse, Response, StreamingResponse

from adapters.documents.encryption import DocumentErased
from adapters.documents.inspection import (
    EmptyFile,
    FileTooLarge,
    UnacceptableFile,
    UnreadableFile,
    UnsupportedFileType,
    inspect_file,
)
from adapters.documents.store import (
    DocumentCorrupted,
    DocumentNotStored,
    DocumentStoreUnavailable,
    SourceChanged,
)
from adapters.http.problems import HttpProblem, problem_response
from adapters.http.schemas.cases import ProblemPublic
from domain.values import require_file_name
from service_intake import DocumentStoreMissing, IncomingDocument
from service_ports import DocumentStore

DOCUMENT_STORE_RETRY_AFTER_SECONDS: Final = 5
MULTIPART: Final = frozenset({"multipart/form-data"})
MULTIPART_OVERHEAD_BYTES: Final = 65_536
"""Room for the form's text fields and part headers on top of the files' own bytes."""

logger = logging.getLogger("akte.documents")

_UPLOAD_STATUS: Final[dict[type[UnacceptableFile], int]] = {
    EmptyFile: 422,
    FileTooLarge: 413,
    UnsupportedFileType: 415,  # RFC 9110 15.5.16: "... or as a result of inspecting the data"
    UnreadableFile: 422,
}


def _problem(description: str) -> dict[str, Any]:
    return {"model": ProblemPublic, "description": description}


UPLOAD_PROBLEMS: Final[dict[int | str, dict[str, Any]]] = {
    400: _problem("The body is not well-formed multipart/form-data (or If-Match is malformed)."),
    409: _problem("A file changed while it was stored (or a rule forbids the write)."),
    413: _problem("The body, or one of its files, is larger than allowed; nothing was stored."),
    415: _problem(
        "The body is not multipart/form-data, or a file is not a PDF, JPEG or PNG by its "
        "content; nothing was stored."
    ),
    422: _problem(
        "A field is invalid, or a file is empty, unreadable or has an unsafe name (a path, "
        "NUL, control characters or direction marks); `errors` or `detail` names it; "
        "nothing was stored."
    ),
    503: _problem("The event store or the document store is unavailable; nothing was recorded."),
}

SHOWN_INLINE: Final = {"application/pdf": "pdf", "image/jpeg": "jpg", "image/png": "png"}

CONTENT_RESPONSES: Final[dict[int | str, dict[str, Any]]] = {
    200: {
        "description": "The document's bytes, verified against the hash and size on record.",
        "content": {
            media_type: {"schema": {"type": "string", "format": "binary"}}
            for media_type in (*SHOWN_INLINE, "application/octet-stream")
        },
    },
    410: _problem(
        "The personal data the document belongs to was erased: its content can no longer "
        "be read (`document-erased`)."
    ),
    500: _problem("The stored document fails verification (corrupted): restore it from a backup."),
}


def incoming_upload(
    upload: UploadFile, field: str, *, max_bytes: int, kind: str
) -> IncomingDocument:
    """An upload checked by name, size and bytes, or an :class:`HttpProblem` saying why not."""
    require_file_name(field, upload.filename or "")
    try:
        inspection = inspect_file(upload.file, max_bytes=max_bytes)
    except UnacceptableFile as refused:
        raise HttpProblem(
            _UPLOAD_STATUS.get(type(refused), 422), refused.code, f"{field}: {refused}"
        ) from None
    return IncomingDocument(
        content=upload.file,
        sha256=inspection.sha256,
        size_bytes=inspection.size_bytes,
        media_type=inspection.media_type,
        page_count=inspection.page_count,
        name=upload.filename or "",
        kind=kind,
    )


def verified_content(
    documents: DocumentStore,
    *,
    sha256: str,
    size_bytes: int,
    owner: UUID,
    media_type: str,
    download_name: str,
    headers: dict[str, str] | None = None,
) -> Response:
    """The document as a streamed response, verified before the first byte goes out.

    Only the three upload types are shown in the browser; a document recorded with any
    other media type (attached by reference) is offered as a download of plain bytes, so
    a recorded ``text/html`` can never make the browser run what the bytes hold.
    """
    documents.verify(sha256, owner=owner, size_bytes=size_bytes)
    chunks: Iterator[bytes] = documents.read_chunks(sha256, owner=owner, size_bytes=size_bytes)
    extension = SHOWN_INLINE.get(media_type)
    if extension is None:
        media_type, disposition = "application/octet-stream", "attachment"
        filename = download_name
    else:
        disposition, filename = "inline", f"{download_name}.{extension}"
    return StreamingResponse(
        chunks,
        media_type=media_type,
        headers={
            "Content-Length": str(size_bytes),
            # Personal data: not for shared caches; and never sniffed as something else.
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
            "Content-Disposition": f'{disposition}; filename="{filename}"',
            **(headers or {}),
        },
    )


async def _document_problem(request: Request, error: Exception) -> JSONResponse:
    if isinstance(error, DocumentErased):
        return problem_response(
            410,
            "document-erased",
            "the personal data this document belongs to has been erased; its content is gone",
        )
    if isinstance(error, DocumentNotStored):
        return problem_response(
            404,
            "document-content-not-stored",
            "the document is on record, but its content is not in the document store",
        )
    if isinstance(error, DocumentCorrupted):
        # The hash names no person; operators restore this one document from a backup.
        logger.error("document %s failed verification: %s", error.sha256, error.reason)
        return problem_response(
            500,
            "document-corrupted",
            "the stored document fails verification; it has been reported for restoring",
        )
    if isinstance(error, SourceChanged):
        return problem_response(
            409, "upload-changed", "the upload changed while it was stored; send it again"
        )
    if isinstance(error, DocumentStoreUnavailable | DocumentStoreMissing):
        logger.warning("document store unavailable: %s", type(error).__name__)
        return problem_response(
            503,
            "document-store-unavailable",
            "the document store is unavailable; nothing was recorded, try again later",
            headers={"Retry-After": str(DOCUMENT_STORE_RETRY_AFTER_SECONDS)},
        )
    raise error


def install_document_problems(app: FastAPI) -> None:
    for error_class in (
        DocumentErased,
        DocumentNotStored,
        DocumentCorrupted,
        SourceChanged,
        DocumentStoreUnavailable,
        DocumentStoreMissing,
    ):
        app.add_exception_handler(error_class, _document_problem)
