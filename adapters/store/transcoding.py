"""How events and snapshots become bytes.

:class:`OrjsonTranscoder` writes exactly the wire format of the library's
``JSONTranscoder`` (``{"_type_": name, "_data_": ...}`` for typed values), so a store
written by one can be read by the other. One
difference: orjson writes a ``UUID`` natively as a plain string, which reads back as
``str``, so Akte's events hold ids as ``str`` (the mapper keeps ``originator_id`` apart).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from datetime import date, datetime
from typing import Any, ClassVar, Protocol

import orjson
from eventsourcing.persistence import (
    DatetimeAsISO,
    DecimalAsStr,
    JSONTranscoder,
    Transcoder,
    Transcoding,
    TranscodingNotRegisteredError,
    UUIDAsHex,
)

from domain import case_file, commitment_declaration, intake


class DateAsISO(Transcoding):
    type = date
    name = "date_iso"

    def encode(self, obj: date) -> str:
        return obj.isoformat()

    def decode(self, data: str) -> date:
        return date.fromisoformat(data)


class DataclassAsDict(Transcoding):
    """A state dataclass (stored in snapshots) as a dict of its fields."""

    def __init__(self, cls: type[Any]) -> None:
        self.type = cls
        self.name = f"akte:{cls.__name__}"
        self._field_names = tuple(f.name for f in dataclasses.fields(cls))

    def encode(self, obj: Any) -> dict[str, Any]:
        return {name: getattr(obj, name) for name in self._field_names}

    def decode(self, data: dict[str, Any]) -> Any:
        return self.type(**data)


SNAPSHOT_STATE_CLASSES: tuple[type[Any], ...] = (
    case_file.MasterData,
    case_file.AttachedDocument,
    case_file.DocumentRequest,
    case_file.Procedure,
    case_file.ResidenceDocument,
    case_file.FictionCertificate,
    case_file.EntryProcedure,
    case_file.Inquiry,
    case_file.IntegrationCourseRecord,
    case_file.Correspondence,
    case_file.Note,
    commitment_declaration.Guarantor,
    commitment_declaration.InvitedPerson,
    commitment_declaration.PaymentAttempt,
    commitment_declaration.AbilityToPayCheck,
    # SubmittedFile also travels inside ContactSubmission.Submitted events.
    intake.ContactDetails,
    intake.SubmittedFile,
    intake.SubmissionReply,
)


class RegistersTranscodings(Protocol):
    def register(self, transcoding: Transcoding) -> None: ...


def register_akte_transcodings(transcoder: RegistersTranscodings) -> None:
    """Every value type that may appear in an Akte event or snapshot."""
    for transcoding in (UUIDAsHex(), DecimalAsStr(), DatetimeAsISO(), DateAsISO()):
        transcoder.register(transcoding)
    for cls in SNAPSHOT_STATE_CLASSES:
        transcoder.register(DataclassAsDict(cls))


class OrjsonTranscoder(Transcoder):
    """Encodes and decodes with orjson, in the library's format.

    Decoding parses with ``orjson.loads``, then one pass over the parsed values turns
    every ``{"_type_": name, "_data_": data}`` into its typed value, inner ones first, as
    the library's ``JSONDecoder`` object hook does. Measured on Akte's event states
    (``benchmarks/``): about 1.5x faster than ``json`` with the hook, most of it because
    the pass turns the common typed values (a date or time as text) with one call. What
    orjson refuses and ``json`` accepts (``NaN``, integers beyond 64 bits, lone
    surrogates) is decoded by ``json`` with the hook, so both read the same documents.
    """

    _OPTIONS: ClassVar[int] = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS

    def __init__(self) -> None:
        self.types: dict[type, Transcoding] = {}
        self.names: dict[str, Transcoding] = {}
        self._decoders: dict[str, Callable[[Any], Any]] = {}
        self._decoder = json.JSONDecoder(object_hook=self._decode_object)

    def register(self, transcoding: Transcoding) -> None:
        self.types[transcoding.type] = transcoding
        self.names[transcoding.name] = transcoding
        # The library's date and time transcodings only call fromisoformat: call it
        # directly (the decoding pass spends most of its time on these).
        self._decoders[transcoding.name] = _DIRECT_DECODERS.get(
            type(transcoding), transcoding.decode
        )

    def encode(self, obj: Any) -> bytes:
        return orjson.dumps(obj, default=self._encode_typed, option=self._OPTIONS)

    def decode(self, data: bytes) -> Any:
        try:
            parsed = orjson.loads(data)
        except orjson.JSONDecodeError:
            return self._decoder.decode(bytes(data).decode("utf-8"))
        kind = type(parsed)
        if kind is dict:
            return self._restore(parsed)
        if kind is list:
            self._restore_list(parsed)
        return parsed

    def _restore(self, obj: dict[str, Any]) -> Any:
        """``obj`` with its typed values restored (in place), or the typed value it is."""
        decoders = self._decoders
        for key, value in obj.items():
            kind = type(value)
            if kind is dict:
                if len(value) == 2 and "_type_" in value and "_data_" in value:
                    data = value["_data_"]
                    if type(data) is str:
                        # The common case (dates and times): nothing inside to restore.
                        name = value["_type_"]
                        decode = decoders.get(name) if type(name) is str else None
                        if decode is None:
                            decode = self._unregistered(name)
                        obj[key] = decode(data)
                        continue
                obj[key] = self._restore(value)
            elif kind is list:
                self._restore_list(value)
        if len(obj) == 2 and "_type_" in obj and "_data_" in obj:
            return self._decode_typed(obj)
        return obj

    def _restore_list(self, items: list[Any]) -> None:
        for index, value in enumerate(items):
            kind = type(value)
            if kind is dict:
                items[index] = self._restore(value)
            elif kind is list:
                self._restore_list(value)

    def _unregistered(self, name: Any) -> Callable[[Any], Any]:
        msg = f"Data serialized with name {name!r} is not deserializable"
        raise TranscodingNotRegisteredError(msg)

    def _encode_typed(self, obj: Any) -> dict[str, Any]:
        try:
            transcoding = self.types[type(obj)]
        except KeyError:
            msg = f"Object of type {type(obj)} is not serializable: register a transcoding"
            raise TranscodingNotRegisteredError(msg) from None
        return {"_type_": transcoding.name, "_data_": transcoding.encode(obj)}

    def _decode_typed(self, obj: dict[str, Any]) -> Any:
        name = obj["_type_"]
        decode = self._decoders.get(name) if type(name) is str else None
        if decode is None:
            decode = self._unregistered(name)
        return decode(obj["_data_"])

    def _decode_object(self, obj: dict[str, Any]) -> Any:
        if len(obj) == 2 and "_type_" in obj and "_data_" in obj:
            return self._decode_typed(obj)
        return obj


_DIRECT_DECODERS: dict[type[Transcoding], Callable[[Any], Any]] = {
    DatetimeAsISO: datetime.fromisoformat,
    DateAsISO: date.fromisoformat,
}


def json_transcoder() -> JSONTranscoder:
    """The library's own transcoder with Akte's transcodings (for comparison and tests)."""
    transcoder = JSONTranscoder()
    register_akte_transcodings(transcoder)
    return transcoder


def orjson_transcoder() -> OrjsonTranscoder:
    transcoder = OrjsonTranscoder()
    register_akte_transcodings(transcoder)
    return transcoder


__all__ = [
    "DataclassAsDict",
    "DateAsISO",
    "OrjsonTranscoder",
    "json_transcoder",
    "orjson_transcoder",
    "register_akte_transcodings",
]
