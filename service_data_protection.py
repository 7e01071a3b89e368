"""Data protection: erasure and what subject access needs; the context
``service.data_protection``.

Erasure (crypto-shredding, § 91 AufenthG, § 68 AufenthV, Art. 17 DSGVO): the erasure is
first recorded on the case file (who, when, legal ground, retention rule, who approved),
then the keys are destroyed: the case file's and those of the records linked to it that
are about the same person (contact form submissions, appointments, waitlist entries,
registration notices; :meth:`DataProtection.linked_records` says how each is found). An
erasure that could not find them all (the person key needs the appointment secret) is
refused before anything is written (:class:`ErasureNeedsAppointmentSecret`). Commitment
declarations linked to the file keep their own key: they are also the guarantor's data,
kept while the guarantor's liability runs (§ 68 AufenthG), and are erased on their own.
Finally the file's snapshots are deleted, so that it is replayed from its (now redacted)
events. An erasure interrupted after its event was recorded is completed by asking for
it again.

Key ownership: every aggregate with personal data has its own key (its id is the key's
owner id): a case file, a commitment declaration, a contact form submission, an
appointment, a waitlist entry. Records are linked to a case file only after they were
written, so they cannot share its key; erasing the file destroys theirs with it.

A part of a record about *another* person has a key of its own (:data:`SEPARATE_PARTS`,
owner id :func:`part_owner_id`): a commitment declaration's invited visitor. Erasing the
visitor's case file destroys the visitor part's key of every declaration linked to it;
the guarantor's part stays readable under the declaration's key.

Every erasure is also written to the **erasure journal** (:class:`ErasureJournal`, ids and
times only), kept apart from the stores, so that a restore from a backup taken before the
erasure destroys those keys again (``adapters.backup.restore``); and the mails sent to the
person that a development mailbox keeps are deleted (:class:`SentMail`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Final, Protocol, cast
from uuid import UUID, uuid4, uuid5

from eventsourcing.persistence import Notification, PersistenceError, StoredEvent
from eventsourcing.utils import get_topic

from domain.appointments import Appointment, WaitlistEntry
from domain.case_file import CaseFile
from domain.commitment_declaration import CommitmentDeclaration
from domain.errors import CaseFileErased, RuleViolation
from domain.intake import ContactSubmission
from domain.personal import is_redacted
from domain.registration_notices import RegistrationNotice
from service_appointment_mails import normalised_identity
from service_appointments import Appointments
from service_common import CaseNotFound, Recorded, note_handed_out
from service_ports import DataKeys, EventStorage, ServiceStore, SnapshotDeletion

logger = logging.getLogger("akte.data_protection")

_LINK_SCAN_PAGE: Final = 1000

VISITOR_PART: Final = "visitor"
SEPARATE_PARTS: Final[dict[str, dict[str, frozenset[str]]]] = {
    get_topic(CommitmentDeclaration.Submitted): {
        VISITOR_PART: frozenset(
            {
                "invited_surname",
                "invited_given_names",
                "invited_date_of_birth",
                "invited_nationality",
                "invited_passport_number",
                # The purpose may be health data of the visitor (medical treatment).
                "purpose",
            }
        )
    }
}
"""Per event topic, the personal fields about another person than the record's own, by
part: sealed under the part's own key (see :func:`part_owner_id`) and erased with that
person's case file."""


def _identities_held(case_events: Sequence[CaseFile.Event]) -> set[tuple[str, str, date]]:
    """Every name and birth date the file's master data has held (its events replayed):
    a booking or a message from before a correction names the person as they were then."""
    identities: set[tuple[str, str, date]] = set()
    replayed: CaseFile | None = None
    for event in case_events:
        replayed = cast(CaseFile, event.mutate(replayed))
        held = replayed.master_data
        if not is_redacted(held.surname):
            identities.add((held.surname, held.given_names, held.date_of_birth))
    return identities


def _identity_of(named: ContactSubmission.Submitted | RegistrationNotice.PutInTriage) -> str:
    """Whom a submission or a notice names, normalised as the person key normalises; ""
    if it names no birth date or its names are erased (it matches no file then)."""
    born = named.date_of_birth
    if born is None or is_redacted(named.surname) or is_redacted(born):
        return ""
    return normalised_identity(named.surname, named.given_names, born)


def _add(found: list[str], owner: str) -> None:
    if owner not in found:
        found.append(owner)


def part_owner_id(owner_id: str, part: str) -> str:
    """The key owner id of ``part`` of the record ``owner_id``: derived, so that the
    mapper and the erasure find it without a lookup; a UUID, never personal data."""
    return str(uuid5(UUID(owner_id), f"akte-part:{part}"))


@dataclass(frozen=True)
class JournalEntry:
    """One erasure in the erasure journal: ids and a time, no personal data."""

    erased_at: datetime
    case_id: str
    owner_ids: list[str]
    """The key owners whose keys the erasure destroyed (the file, its linked records and
    parts)."""


class ErasureJournal(Protocol):
    """Where erasures are written down apart from the event and key stores (an
    append-only file), for restores from older backups."""

    def append(self, entry: JournalEntry) -> None: ...


class SentMail(Protocol):
    """Mails kept after sending (a development mailbox): deleted with the person."""

    def erase_to(self, addresses: Iterable[str]) -> int:
        """Delete every kept mail to one of ``addresses``; returns how many."""
        ...


class PersonalDataProtectionOff(Exception):
    """The service was built without a key store (tests, benchmarks)."""


class ErasureNeedsAppointmentSecret(RuleViolation):
    """The erasure would not reach every record of the person, so it is refused before
    anything is recorded or destroyed: the office has online bookings or waitlist entries
    that only the person key ties to a person, and this service cannot compute the key of
    the file's master data (``AKTE_APPOINTMENT_SECRET`` unset or too short: a command
    line's or a retention job's container, say). The HTTP API answers ``409`` with this
    code, the command line exits 1, the retention run counts the file as failed. The
    message names numbers and settings only."""

    code = "erasure-needs-appointment-secret"

    def __init__(self, unchecked: int) -> None:
        super().__init__(
            f"{unchecked} online bookings or waitlist entries of the office can be tied to "
            "the file's person only with the appointment secret, which this deployment "
            "lacks (AKTE_APPOINTMENT_SECRET unset or too short): nothing was erased; "
            "carry out the erasure where the secret is set"
        )
        self.unchecked = unchecked


@dataclass(frozen=True)
class LinkedRecords:
    """Records linked to a case file (ids as text)."""

    submissions: list[str] = field(default_factory=list)
    declarations: list[str] = field(default_factory=list)
    appointments: list[str] = field(default_factory=list)
    """Booked with the file's id, linked to it or attended on it; offered to the person's
    waitlist entries (a freed seat); and the office's bookings without a file of the same
    person key (booked online, never linked)."""
    waitlist_entries: list[str] = field(default_factory=list)
    """Those joined for the file, and the office's entries of the same person, recognised
    by the person key bookings carry (names and birth date, keyed)."""
    registration_notices: list[str] = field(default_factory=list)
    """Registration office notices from triage recorded on the file."""
    notices_naming_the_file: list[str] = field(default_factory=list)
    """Notices that name the file among their candidates and were not recorded on a file
    (in triage, or dismissed): possibly about the person, erased with the file, also when
    they name other candidates (see :meth:`DataProtection.linked_records`); not exported
    by subject access, since they may be about another candidate."""
    same_identity: list[str] = field(default_factory=list)
    """The office's contact submissions and registration notices linked or recorded on no
    file that name one of the names and birth dates the file has held (compared as the
    person key compares them: without case, accents, spaces or punctuation): the person's,
    as the online bookings of the same person key are; erased with the file, not exported
    by subject access (another person of the same name and birth date is possible)."""
    unchecked: int = 0
    """The office's bookings and waitlist entries that only the person key could tie to
    the person, left unchecked because this service cannot compute the key of the file's
    master data (no appointment secret): an erasure refuses while there are any."""

    @property
    def same_person(self) -> list[str]:
        """The linked records about the file's person only: erased with the file."""
        return [
            *self.submissions,
            *self.appointments,
            *self.waitlist_entries,
            *self.registration_notices,
            *self.notices_naming_the_file,
            *self.same_identity,
        ]

    @property
    def visitor_parts(self) -> list[str]:
        """The key owners of the visitor parts of the linked declarations (the file's
        person is the invited visitor): erased with the file, the guarantor's part kept."""
        return [part_owner_id(declaration, VISITOR_PART) for declaration in self.declarations]


@dataclass(frozen=True)
class Erasure:
    """What an erasure did."""

    case_id: UUID
    erased_at: datetime
    keys_destroyed: list[str]
    """Owner ids (the file, linked records) whose keys were destroyed now."""
    linked_kept: list[str]
    """Linked commitment declarations: their own key and retention (the guarantor's part;
    the visitor's part is erased)."""
    plaintext_events: int
    """Events of the file and its erased records whose personal data was written in the
    clear (before per-person encryption was switched on): key destruction cannot erase
    them (see docs "Data protection")."""
    snapshots_deleted: int
    completed_only: bool = False
    """The erasure had been recorded before; only the keys were destroyed now."""
    visitor_parts_not_separable: int = 0
    """Linked declarations written before the visitor's part had a key of its own: the
    visitor's data in them stays under the declaration's key (erased with it)."""
    mails_deleted: int = 0
    """Mails to the person a development mailbox kept, deleted."""


class DataProtection:
    """Erasure and what subject access needs; ``service.data_protection``.

    Also hands out the ids of new aggregates with personal data (their keys made ahead):
    :meth:`new_personal_id`, which the service passes on to every context.
    """

    def __init__(
        self,
        store: ServiceStore,
        *,
        keys: DataKeys | None,
        storage: EventStorage | None,
        snapshot_deletion: SnapshotDeletion | None,
        appointments: Appointments,
    ) -> None:
        """``keys`` None: no per-person encryption (erasure refuses);
        ``appointments``: for the person keys of the file's person."""
        self._store = store
        self._keys = keys
        self._storage = storage
        self._snapshot_deletion = snapshot_deletion
        self._appointments = appointments
        self._journal: ErasureJournal | None = None
        self._sent_mail: SentMail | None = None

    def use_erasure_journal(self, journal: ErasureJournal | None) -> None:
        """Write every erasure to ``journal`` (the composition root sets it)."""
        self._journal = journal

    def use_sent_mail(self, sent_mail: SentMail | None) -> None:
        """Delete the person's kept mails on erasure (a development mailbox)."""
        self._sent_mail = sent_mail

    @property
    def keys(self) -> DataKeys:
        if self._keys is None:
            msg = "this service was built without per-person encryption"
            raise PersonalDataProtectionOff(msg)
        return self._keys

    def new_personal_id(self) -> UUID:
        """The id of a new aggregate that will hold personal data: with per-person
        encryption, one whose data key was made ahead (see ``DataKeys.new_owner_id``).

        Call it only inside a command marked ``gives_back_unwritten_ids``, which puts
        the ids of aggregates it did not write (the command was refused) back into the
        reserve, so that refused requests leave no keys behind.
        """
        keys = self._keys
        if keys is None or self._storage is None or not self._storage.encrypting:
            return uuid4()
        with self._store.store_errors():
            owner_id = keys.new_owner_id()
        note_handed_out(owner_id, self._give_back_unwritten)
        return owner_id

    def _give_back_unwritten(self, owner_ids: list[UUID]) -> None:
        if self._keys is None:
            return
        try:
            self._keys.give_back_unwritten(owner_ids)
        except PersistenceError:
            # Their keys stay unused in the store; the command's own outcome stands.
            logger.warning("could not put unused data keys back into the reserve")

    def release_reserved_keys(self) -> None:
        """Delete the keys made ahead and not used (the service closes)."""
        if self._keys is None:
            return
        try:
            self._keys.release_reserve()
        except PersistenceError:
            # Unused keys left behind decrypt nothing; closing must not fail for them.
            logger.warning("could not delete the unused data keys made ahead", exc_info=True)

    def close_keys(self) -> None:
        if self._keys is not None:
            self._keys.close()

    # ---------------------------------------------------------------- links

    def linked_records(self, case_id: UUID) -> LinkedRecords:
        """Submissions, declarations, appointments and registration notices linked to the
        case file (appointments also when booked with its id), the person's waitlist
        entries, the appointments offered to those, the office's other bookings of the
        same person key, and the notices naming the file in triage (see
        :class:`LinkedRecords`).

        One scan of the log for the link, booking, waitlist and notice events (tens of
        thousands a year): fine for the rare erasure or subject access, not for a hot path.
        """
        case = self._store.get_case(case_id)
        wanted = str(case_id)
        kinds = {
            get_topic(ContactSubmission.LinkedToCaseFile): "submissions",
            get_topic(CommitmentDeclaration.LinkedToCaseFile): "declarations",
            get_topic(Appointment.LinkedToCaseFile): "appointments",
        }
        booked_topic = get_topic(Appointment.Booked)
        appointment_linked_topic = get_topic(Appointment.LinkedToCaseFile)
        joined_topic = get_topic(WaitlistEntry.Joined)
        triage_topic = get_topic(RegistrationNotice.PutInTriage)
        resolved_topic = get_topic(RegistrationNotice.Resolved)
        submitted_topic = get_topic(ContactSubmission.Submitted)
        submission_linked_topic = get_topic(ContactSubmission.LinkedToCaseFile)
        # The office's submissions and notices in triage by whom they name (normalised).
        named_here: list[tuple[str, str]] = []
        found: dict[str, list[str]] = {
            "submissions": [],
            "declarations": [],
            "appointments": [],
            "registration_notices": [],
        }
        joined_here: list[WaitlistEntry.Joined] = []
        # The office's bookings made without a file's id: the person's if their key is.
        booked_here: list[Appointment.Booked] = []
        linked_elsewhere: set[str] = set()
        named_in_triage: list[str] = []
        recorded_elsewhere: set[str] = set()
        topics = [*kinds, booked_topic, joined_topic, triage_topic, resolved_topic, submitted_topic]
        for notification, event in self._scan(topics):
            topic = notification.topic
            owner = str(notification.originator_id)
            if topic == joined_topic:
                entry = cast(WaitlistEntry.Joined, event)
                if entry.office_id == case.office_id or entry.case_id == wanted:
                    joined_here.append(entry)
            elif topic == booked_topic:
                booked = cast(Appointment.Booked, event)
                if booked.case_id == wanted:
                    # Booked with the file's id (at the counter): named from the first event.
                    _add(found["appointments"], owner)
                elif booked.case_id is None and booked.office_id == case.office_id:
                    booked_here.append(booked)
            elif topic == submitted_topic:
                submitted = cast(ContactSubmission.Submitted, event)
                if submitted.office_id == case.office_id:
                    named_here.append((owner, _identity_of(submitted)))
            elif topic == triage_topic:
                notice = cast(RegistrationNotice.PutInTriage, event)
                if wanted in notice.candidate_case_ids:
                    named_in_triage.append(owner)
                elif notice.office_id == case.office_id:
                    named_here.append((owner, _identity_of(notice)))
            elif topic == resolved_topic:
                resolved = cast(RegistrationNotice.Resolved, event)
                if resolved.case_id == wanted:
                    # A notice from triage recorded on the file is about its person.
                    _add(found["registration_notices"], owner)
                elif resolved.case_id is not None:
                    recorded_elsewhere.add(owner)
            elif str(getattr(event, "case_id", "")) == wanted:
                _add(found[kinds[topic]], owner)
            elif topic in (appointment_linked_topic, submission_linked_topic):
                linked_elsewhere.add(owner)
        # Attendance recorded on the file names appointments too.
        case_events = list(self._store.events_of(case_id, CaseFile.Event, CaseNotFound(case_id)))
        for event in case_events:
            if isinstance(event, CaseFile.AppointmentAttendanceRecorded):
                _add(found["appointments"], event.appointment_id)
        person_keys, keys_complete = self._person_keys(case_events, found["appointments"])
        waitlist_entries = [
            str(entry.originator_id)
            for entry in joined_here
            if entry.case_id == wanted or entry.person_key in person_keys
        ]
        # A freed seat offered to one of the person's entries is the person's booking,
        # also when the entry was joined online (no file id); and so is a booking of the
        # same person key made without a file's id, unless it was linked to another file.
        entries = set(waitlist_entries)
        for booked in booked_here:
            owner = str(booked.originator_id)
            if booked.waitlist_entry_id in entries or (
                booked.person_key in person_keys and owner not in linked_elsewhere
            ):
                _add(found["appointments"], owner)
        unchecked = 0
        if not keys_complete:
            unchecked = sum(str(entry.originator_id) not in entries for entry in joined_here)
            unchecked += sum(
                str(booked.originator_id) not in found["appointments"]
                and str(booked.originator_id) not in linked_elsewhere
                for booked in booked_here
            )
        # A notice in triage naming the file (its candidates) may be about the person:
        # erased with the file, also when it names other candidate files too. It is about
        # one person and cannot be split; keeping it would keep the erased person's name,
        # birth date and new address readable, while the other candidates lose nothing
        # recorded on their files (a caseworker sees the notice, without names, in triage,
        # and asks the registration office again). One recorded on another file was
        # decided to be that file's person's: kept.
        notices = [
            owner
            for owner in named_in_triage
            if owner not in recorded_elsewhere and owner not in found["registration_notices"]
        ]
        identities = {
            normalised_identity(surname, given_names, born)
            for surname, given_names, born in _identities_held(case_events)
        }
        taken = {*notices, *found["submissions"], *found["registration_notices"]}
        same_identity = [
            owner
            for owner, named in named_here
            if named in identities
            and owner not in taken
            and owner not in linked_elsewhere
            and owner not in recorded_elsewhere
        ]
        return LinkedRecords(
            **found,
            waitlist_entries=waitlist_entries,
            notices_naming_the_file=notices,
            same_identity=same_identity,
            unchecked=unchecked,
        )

    def _scan(self, topics: list[str]) -> Iterator[tuple[Notification, Any]]:
        """The log's events of these topics, decoded, page by page."""
        position = 0
        while True:
            with self._store.store_errors():
                notifications = self._store.recorder.select_notifications(
                    start=position,
                    limit=_LINK_SCAN_PAGE,
                    topics=topics,
                    inclusive_of_start=False,
                )
            for notification in notifications:
                yield notification, self._store.mapper.to_domain_event(notification)
            if len(notifications) < _LINK_SCAN_PAGE:
                return
            position = notifications[-1].id

    def _person_keys(
        self, case_events: Sequence[CaseFile.Event], appointment_ids: list[str]
    ) -> tuple[set[str], bool]:
        """The person keys (see ``person_key_for``) of the file's person: from every name
        and birth date the file has held (a booking made before a correction carries the
        key of the name as it was then), or, once those are erased, from its linked
        appointments; and whether they are complete (False: the master data's keys need
        the appointment secret, which this service lacks)."""
        identities = _identities_held(case_events)
        person_keys: set[str] = set()
        complete = True
        if identities and not self._appointments.configured:
            complete = False
        elif identities:
            person_keys.update(
                self._appointments.person_key_for(surname, given_names, born)
                for surname, given_names, born in identities
            )
        for appointment_id in appointment_ids:
            # None: named on the file, never booked here
            appointment = self._store.find(UUID(appointment_id), Appointment)
            if appointment is not None and appointment.person_key:
                person_keys.add(appointment.person_key)
        return person_keys, complete

    # -------------------------------------------------------------- erasure

    def erase_personal_data(
        self,
        case_id: UUID,
        *,
        expected_version: int,
        by: str,
        legal_ground: str,
        approved_by: str,
        rule_id: str | None = None,
        at: datetime | None = None,
    ) -> Recorded[Erasure]:
        """Erase the person's data: record the erasure, then destroy the keys.

        Raises :class:`domain.errors.CaseFileErased` if the file was erased already (an
        erasure whose keys were not all destroyed yet is completed instead), and
        :class:`ErasureNeedsAppointmentSecret`, before anything is recorded or destroyed,
        if it could not find every record of the person.
        """
        keys = self.keys
        case = self._store.get_case(case_id)
        linked = self.linked_records(case_id)
        _check_complete(linked)
        owners = [str(case_id), *linked.same_person, *linked.visitor_parts]
        if case.is_erased:
            # Those found when the erasure was recorded (with the master data's person
            # key, which the redacted master data no longer gives) are completed too.
            for event in self._store.events_of(case_id, CaseFile.Event, CaseNotFound(case_id)):
                if isinstance(event, CaseFile.PersonalDataErased):
                    owners += [owner for owner in event.linked_ids if owner not in owners]
            remaining = [owner for owner in owners if keys.has_key(owner)]
            if not remaining:
                case.check_not_erased()
            erasure = self._destroy(case_id, owners, linked, completed_only=True)
            return Recorded(case_id, case.version, erasure, 0)
        recorded = self._store.change_case(
            case_id,
            expected_version,
            by,
            at,
            lambda case, act: case.erase_personal_data(
                legal_ground=legal_ground,
                rule_id=rule_id,
                approved_by=approved_by,
                linked_ids=[*linked.same_person, *linked.visitor_parts],
                act=act,
            ),
        )
        erasure = self._destroy(case_id, owners, linked, completed_only=False)
        return Recorded(case_id, recorded.version, erasure, recorded.position)

    def check_erasable(self, case_id: UUID) -> None:
        """Raise :class:`ErasureNeedsAppointmentSecret` if an erasure of the file now
        would not reach every record of its person (for an approval, before it is
        recorded); nothing is written."""
        _check_complete(self.linked_records(case_id))

    def _destroy(
        self, case_id: UUID, owners: list[str], linked: LinkedRecords, *, completed_only: bool
    ) -> Erasure:
        erased_at = self._store.clock()
        keys = self.keys
        # A declaration written since the split always has its visitor part's key.
        not_separable = (
            0 if completed_only else sum(not keys.has_key(p) for p in linked.visitor_parts)
        )
        addresses = self._addresses(case_id, linked)
        if self._journal is not None:
            # First: an erasure written down whose keys are not destroyed yet is completed
            # by a restore; one whose keys are gone but that is not written down is not.
            self._journal.append(JournalEntry(erased_at, str(case_id), list(owners)))
        destroyed = keys.destroy(owners, erased_at)
        mails = self._sent_mail.erase_to(addresses) if self._sent_mail is not None else 0
        snapshots = self._delete_snapshots(case_id)
        self._store.uncache_case(case_id)
        plaintext = sum(self._plaintext_events(UUID(owner)) for owner in owners)
        logger.info(
            "personal data of case file %s erased: %d keys destroyed, %d snapshots deleted",
            case_id,
            len(destroyed),
            snapshots,
        )
        if plaintext:
            logger.warning(
                "case file %s: %d events hold personal data written before encryption; "
                "destroying keys does not erase them",
                case_id,
                plaintext,
            )
        return Erasure(
            case_id=case_id,
            erased_at=erased_at,
            keys_destroyed=destroyed,
            linked_kept=list(linked.declarations),
            plaintext_events=plaintext,
            snapshots_deleted=snapshots,
            completed_only=completed_only,
            visitor_parts_not_separable=not_separable,
            mails_deleted=mails,
        )

    def _addresses(self, case_id: UUID, linked: LinkedRecords) -> set[str]:
        """The person's e-mail addresses from the linked records still readable (before
        their keys go): where kept mails were sent."""
        if self._sent_mail is None:
            return set()
        addresses: set[str] = set()
        records: list[tuple[str, type[Any]]] = [
            *((owner, Appointment.Event) for owner in linked.appointments),
            *((owner, WaitlistEntry.Event) for owner in linked.waitlist_entries),
            *((owner, ContactSubmission.Event) for owner in linked.submissions),
        ]
        with self._store.store_errors():
            for owner, kind in records:
                try:
                    events = self._store.events_of(UUID(owner), kind, LookupError(owner))
                except LookupError:  # named on the file, never stored here
                    continue
                for event in events:
                    # Bookings and entries name ``email``, submissions their contact's.
                    email = getattr(event, "email", None)
                    if isinstance(email, str) and email and not is_redacted(email):
                        addresses.add(email)
        return addresses

    def reapply(self, entry: JournalEntry) -> list[str]:
        """Destroy again the keys of a journal entry (a restore from an older backup) and
        delete the file's snapshots; returns the owners whose keys were still there.
        Records no event: the erasure is recorded in the journal."""
        keys = self.keys
        present = [owner for owner in entry.owner_ids if keys.has_key(owner)]
        destroyed = keys.destroy(list(entry.owner_ids), entry.erased_at)
        case_id = UUID(entry.case_id)
        self._delete_snapshots(case_id)
        self._store.uncache_case(case_id)
        return sorted(set(present) | set(destroyed))

    def _plaintext_events(self, owner_id: UUID) -> int:
        """Events of the aggregate whose personal fields are stored in the clear."""
        if self._storage is None:
            return 0
        transcoder = self._store.mapper.transcoder
        count = 0
        with self._store.store_errors():
            stored: Iterable[StoredEvent] = self._store.recorder.select_events(owner_id)
            for stored_event in stored:
                if self._storage.holds_plaintext(stored_event, transcoder):
                    count += 1
        return count

    def _delete_snapshots(self, case_id: UUID) -> int:
        """Delete the case file's snapshots (they were sealed whole with its key)."""
        if self._snapshot_deletion is None:
            return 0
        with self._store.store_errors():
            return self._snapshot_deletion.delete_snapshots(case_id)

    def check_case_not_erased(self, case_id: UUID) -> None:
        if self._store.get_case(case_id).is_erased:
            msg = "the personal data of this case file has been erased"
            raise CaseFileErased(msg)


def _check_complete(linked: LinkedRecords) -> None:
    """An erasure reaches every record of the person, or refuses before anything."""
    if linked.unchecked:
        raise ErasureNeedsAppointmentSecret(linked.unchecked)
