"""Case files: opening, reading, history, master data, transfer and closure."""

from __future__ import annotations

from typing import Annotated, Final, cast

from fastapi import APIRouter, Query, Request, Response, status

from adapters.http.auth.permissions import CaseOffices, Permission, home_office, may_in_office
from adapters.http.deps import (
    CaseHistoryReader,
    CaseId,
    CaseOpener,
    CaseReader,
    CaseWriter,
    ExpectedVersion,
    ServiceDep,
    SettingsDep,
)
from adapters.http.read_log import note_read
from adapters.http.route_helpers import (
    OPEN_PROBLEMS,
    POSITION_HEADER,
    READ_PROBLEMS,
    WRITE_PROBLEMS,
    etag,
    load_case,
    recorded_response,
)
from adapters.http.routes.case_files.history import AsOf, AtVersion, OnDate, case_at
from adapters.http.schemas.cases import (
    MAX_CODE,
    CaseCreate,
    CaseOpenedPublic,
    CasePublic,
    ClosureCreate,
    EventPublic,
    MasterDataCorrectionCreate,
    RecordedPublic,
    TransferCreate,
)
from adapters.http.schemas.lawful import Line
from domain.case_file import CaseFile, MasterData
from domain.personal import personal_fields
from service_common import ReferenceNotFound

DEFAULT_EVENT_PAGE: Final = 100
MAX_EVENT_PAGE: Final = 1000

# The library's own fields and those EventPublic shows on its own; the rest is ``data``.
_EVENT_ENVELOPE_FIELDS: Final = frozenset(
    {"originator_id", "originator_version", "originator_topic", "timestamp", "by", "at"}
)

router = APIRouter(prefix="/cases", tags=["cases"])


def _event_public(event: CaseFile.Event, *, with_personal_data: bool) -> EventPublic:
    """The event's fields; without ``with_personal_data`` its personal fields are left
    out and named in ``withheld``, as the history leaves them out."""
    data = {
        name: value for name, value in vars(event).items() if name not in _EVENT_ENVELOPE_FIELDS
    }
    withheld: list[str] = []
    if not with_personal_data:
        withheld = sorted(name for name in personal_fields(type(event)) if name in data)
        for name in withheld:
            del data[name]
    return EventPublic(
        version=event.originator_version,
        type=type(event).__name__,
        by=event.by,
        at=event.at,
        recorded_at=event.timestamp,
        data=data,
        withheld=withheld,
    )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses=OPEN_PROBLEMS,
)
def open_case(
    body: CaseCreate,
    request: Request,
    opener: CaseOpener,
    response: Response,
    service: ServiceDep,
) -> CaseOpenedPublic:
    """Open a person's case file in your office; a file number is generated unless given."""
    recorded = service.open_case(
        office_id=home_office(opener),
        reference=body.reference,
        master_data=MasterData(
            surname=body.surname,
            given_names=body.given_names,
            date_of_birth=body.date_of_birth,
            nationality=body.nationality,
            passport_number=body.passport_number,
            address=body.address,
        ),
        by=opener.user_id,
        at=body.at,
    )
    response.headers["ETag"] = etag(recorded.version)
    response.headers[POSITION_HEADER] = str(recorded.position)
    response.headers["Location"] = str(request.url_for("get_case", case_id=str(recorded.case_id)))
    return CaseOpenedPublic(
        case_id=recorded.case_id, reference=recorded.result, version=recorded.version
    )


@router.get("/by-reference/{reference:path}", responses=READ_PROBLEMS)
def get_case_by_reference(
    reference: str,
    request: Request,
    reader: CaseReader,
    response: Response,
    service: ServiceDep,
    settings: SettingsDep,
    office_id: Annotated[
        Line | None,
        Query(
            max_length=MAX_CODE,
            description=(
                "The office whose file number it is; omitted: your own office. Only "
                "auditors reach other offices: for anyone else there is no such file."
            ),
        ),
    ] = None,
) -> CasePublic:
    """Find a case file by its file number (Aktenzeichen) in an office."""
    office_id = office_id or reader.office_id or settings.default_office_id
    if not may_in_office(reader, Permission.CASE_READ, office_id):
        # As for a file number that does not exist: other offices' files are not revealed.
        raise ReferenceNotFound
    case_id = service.find_case_by_reference(office_id, reference)
    note_read(request.state, case_id=case_id, office_id=office_id)
    case = load_case(service, case_id)
    response.headers["ETag"] = etag(case.version)
    response.headers["Content-Location"] = str(request.url_for("get_case", case_id=str(case_id)))
    return CasePublic.model_validate(case)


@router.get("/{case_id}", responses=READ_PROBLEMS)
def get_case(
    case_id: CaseId,
    reader: CaseReader,
    response: Response,
    service: ServiceDep,
    as_of: AsOf = None,
    version: AtVersion = None,
    on: OnDate = None,
) -> CasePublic:
    """The case file as it is now (or was: as recorded at `as_of`, at `version`, or as it
    stood on the business date `on`).

    Its ETag is the version shown (for `on`: the last event the state includes); the
    current one is what to send as If-Match. A time or date before the file was opened,
    or a version it never had, answers 404."""
    case = case_at(service, case_id, as_of=as_of, version=version, on=on)
    response.headers["ETag"] = etag(case.version)
    return CasePublic.model_validate(case)


@router.get("/{case_id}/events", responses=READ_PROBLEMS)
def list_case_events(
    case_id: CaseId,
    request: Request,
    reader: CaseHistoryReader,
    response: Response,
    service: ServiceDep,
    after_version: Annotated[
        int,
        Query(
            ge=0,
            description=(
                "The page cursor: the version of the last event you have; only later "
                "events are listed. Omitted: from the first event."
            ),
        ),
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_EVENT_PAGE)] = DEFAULT_EVENT_PAGE,
) -> list[EventPublic]:
    """The case file's events in order, a page at a time. Personal fields (old names,
    free-text reasons, notes ...) only for readers with `case.history.personal.read`
    (auditors, the data protection officer); others get their names in `withheld`, as
    in the history.

    A full page carries `Link: <...>; rel="next"` naming the next page; the last page
    has none. Versions have no gaps and events are never removed, so the cursor stays
    valid for good and a page once read never changes.
    """
    office_id = cast(CaseOffices, request.app.state.case_offices).office_of(case_id)
    with_personal_data = may_in_office(reader, Permission.CASE_HISTORY_PERSONAL_READ, office_id)
    events = service.case_events(case_id, after_version=after_version, limit=limit)
    if not events and after_version > 0:
        # The service reports an unknown case only when asked from the start.
        service.case_events(case_id, limit=1)
    if len(events) == limit:
        next_page = request.url.include_query_params(
            after_version=events[-1].originator_version, limit=limit
        )
        response.headers["Link"] = f'<{next_page}>; rel="next"'
    return [_event_public(event, with_personal_data=with_personal_data) for event in events]


@router.post("/{case_id}/master-data/corrections", responses=WRITE_PROBLEMS)
def correct_master_data(
    case_id: CaseId,
    body: MasterDataCorrectionCreate,
    response: Response,
    service: ServiceDep,
    principal: CaseWriter,
    expected_version: ExpectedVersion,
) -> RecordedPublic:
    """Correct the person's master data; only the fields given change."""
    recorded = service.correct_master_data(
        case_id,
        expected_version=expected_version,
        by=principal.user_id,
        corrections=body.corrections(),
        reason=body.reason,
        at=body.at,
    )
    return recorded_response(response, recorded)


@router.post("/{case_id}/transfer", responses=WRITE_PROBLEMS)
def transfer_case(
    case_id: CaseId,
    body: TransferCreate,
    response: Response,
    service: ServiceDep,
    principal: CaseWriter,
    expected_version: ExpectedVersion,
) -> RecordedPublic:
    """Hand the case file over to another office after the person moved away."""
    recorded = service.transfer_to_office(
        case_id,
        expected_version=expected_version,
        by=principal.user_id,
        to_office_id=body.to_office_id,
        reason=body.reason,
        at=body.at,
    )
    return recorded_response(response, recorded)


@router.post("/{case_id}/closure", responses=WRITE_PROBLEMS)
def close_case(
    case_id: CaseId,
    body: ClosureCreate,
    response: Response,
    service: ServiceDep,
    principal: CaseWriter,
    expected_version: ExpectedVersion,
) -> RecordedPublic:
    """Close the case file: the person was naturalised, died or left Germany."""
    recorded = service.close_case(
        case_id,
        expected_version=expected_version,
        by=principal.user_id,
        closure_reason=body.closure_reason,
        at=body.at,
    )
    return recorded_response(response, recorded)
