import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SubjectKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SUBJECT_KIND_UNSPECIFIED: _ClassVar[SubjectKind]
    SUBJECT_KIND_ENTERPRISE: _ClassVar[SubjectKind]
    SUBJECT_KIND_PERSON: _ClassVar[SubjectKind]

class Scope(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SCOPE_UNSPECIFIED: _ClassVar[Scope]
    SCOPE_ADMINISTRATIVE_PENALTY: _ClassVar[Scope]
    SCOPE_SERIOUS_DISHONESTY_LIST: _ClassVar[Scope]
    SCOPE_ABNORMAL_OPERATIONS_LIST: _ClassVar[Scope]
    SCOPE_SERIOUS_ILLEGAL_DISHONESTY_LIST: _ClassVar[Scope]
    SCOPE_FATAL_ACCIDENT_LIST: _ClassVar[Scope]
    SCOPE_ADMINISTRATIVE_COERCION: _ClassVar[Scope]
    SCOPE_CRIMINAL_JUDGMENT: _ClassVar[Scope]

class Outcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OUTCOME_UNSPECIFIED: _ClassVar[Outcome]
    OUTCOME_NO_RECORD: _ClassVar[Outcome]
    OUTCOME_RECORDS: _ClassVar[Outcome]
    OUTCOME_NOT_COVERED: _ClassVar[Outcome]

class Procedure(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PROCEDURE_UNSPECIFIED: _ClassVar[Procedure]
    PROCEDURE_GENERAL: _ClassVar[Procedure]
    PROCEDURE_SIMPLIFIED: _ClassVar[Procedure]
    PROCEDURE_NOT_APPLICABLE: _ClassVar[Procedure]

class RecordStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RECORD_STATUS_UNSPECIFIED: _ClassVar[RecordStatus]
    RECORD_STATUS_IN_FORCE: _ClassVar[RecordStatus]
    RECORD_STATUS_REPAIRED: _ClassVar[RecordStatus]
    RECORD_STATUS_REVOKED: _ClassVar[RecordStatus]

class Exclusion(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EXCLUSION_UNSPECIFIED: _ClassVar[Exclusion]
    EXCLUSION_SIMPLIFIED_PROCEDURE: _ClassVar[Exclusion]
    EXCLUSION_NOT_PENALISED: _ClassVar[Exclusion]
    EXCLUSION_CREDIT_REPAIRED: _ClassVar[Exclusion]
    EXCLUSION_REVOKED: _ClassVar[Exclusion]

class ObjectionKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OBJECTION_KIND_UNSPECIFIED: _ClassVar[ObjectionKind]
    OBJECTION_KIND_OBJECTION: _ClassVar[ObjectionKind]
    OBJECTION_KIND_CREDIT_REPAIR: _ClassVar[ObjectionKind]

class ObjectionState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OBJECTION_STATE_UNSPECIFIED: _ClassVar[ObjectionState]
    OBJECTION_STATE_OPEN: _ClassVar[ObjectionState]
    OBJECTION_STATE_CLOSED: _ClassVar[ObjectionState]

class Resolution(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RESOLUTION_UNSPECIFIED: _ClassVar[Resolution]
    RESOLUTION_UPHELD: _ClassVar[Resolution]
    RESOLUTION_CORRECTED: _ClassVar[Resolution]
    RESOLUTION_REVOKED: _ClassVar[Resolution]
    RESOLUTION_REPAIRED: _ClassVar[Resolution]
    RESOLUTION_REFUSED: _ClassVar[Resolution]
SUBJECT_KIND_UNSPECIFIED: SubjectKind
SUBJECT_KIND_ENTERPRISE: SubjectKind
SUBJECT_KIND_PERSON: SubjectKind
SCOPE_UNSPECIFIED: Scope
SCOPE_ADMINISTRATIVE_PENALTY: Scope
SCOPE_SERIOUS_DISHONESTY_LIST: Scope
SCOPE_ABNORMAL_OPERATIONS_LIST: Scope
SCOPE_SERIOUS_ILLEGAL_DISHONESTY_LIST: Scope
SCOPE_FATAL_ACCIDENT_LIST: Scope
SCOPE_ADMINISTRATIVE_COERCION: Scope
SCOPE_CRIMINAL_JUDGMENT: Scope
OUTCOME_UNSPECIFIED: Outcome
OUTCOME_NO_RECORD: Outcome
OUTCOME_RECORDS: Outcome
OUTCOME_NOT_COVERED: Outcome
PROCEDURE_UNSPECIFIED: Procedure
PROCEDURE_GENERAL: Procedure
PROCEDURE_SIMPLIFIED: Procedure
PROCEDURE_NOT_APPLICABLE: Procedure
RECORD_STATUS_UNSPECIFIED: RecordStatus
RECORD_STATUS_IN_FORCE: RecordStatus
RECORD_STATUS_REPAIRED: RecordStatus
RECORD_STATUS_REVOKED: RecordStatus
EXCLUSION_UNSPECIFIED: Exclusion
EXCLUSION_SIMPLIFIED_PROCEDURE: Exclusion
EXCLUSION_NOT_PENALISED: Exclusion
EXCLUSION_CREDIT_REPAIRED: Exclusion
EXCLUSION_REVOKED: Exclusion
OBJECTION_KIND_UNSPECIFIED: ObjectionKind
OBJECTION_KIND_OBJECTION: ObjectionKind
OBJECTION_KIND_CREDIT_REPAIR: ObjectionKind
OBJECTION_STATE_UNSPECIFIED: ObjectionState
OBJECTION_STATE_OPEN: ObjectionState
OBJECTION_STATE_CLOSED: ObjectionState
RESOLUTION_UNSPECIFIED: Resolution
RESOLUTION_UPHELD: Resolution
RESOLUTION_CORRECTED: Resolution
RESOLUTION_REVOKED: Resolution
RESOLUTION_REPAIRED: Resolution
RESOLUTION_REFUSED: Resolution

class Date(_message.Message):
    __slots__ = ("year", "month", "day")
    YEAR_FIELD_NUMBER: _ClassVar[int]
    MONTH_FIELD_NUMBER: _ClassVar[int]
    DAY_FIELD_NUMBER: _ClassVar[int]
    year: int
    month: int
    day: int
    def __init__(self, year: _Optional[int] = ..., month: _Optional[int] = ..., day: _Optional[int] = ...) -> None: ...

class GetCatalogueRequest(_message.Message):
    __slots__ = ("origin",)
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    origin: str
    def __init__(self, origin: _Optional[str] = ...) -> None: ...

class CatalogueEntry(_message.Message):
    __slots__ = ("domain", "domain_name", "subject_kind", "scopes", "authorities")
    DOMAIN_FIELD_NUMBER: _ClassVar[int]
    DOMAIN_NAME_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_KIND_FIELD_NUMBER: _ClassVar[int]
    SCOPES_FIELD_NUMBER: _ClassVar[int]
    AUTHORITIES_FIELD_NUMBER: _ClassVar[int]
    domain: str
    domain_name: str
    subject_kind: SubjectKind
    scopes: _containers.RepeatedScalarFieldContainer[Scope]
    authorities: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, domain: _Optional[str] = ..., domain_name: _Optional[str] = ..., subject_kind: _Optional[_Union[SubjectKind, str]] = ..., scopes: _Optional[_Iterable[_Union[Scope, str]]] = ..., authorities: _Optional[_Iterable[str]] = ...) -> None: ...

class Catalogue(_message.Message):
    __slots__ = ("region", "version", "entries", "data_as_of")
    REGION_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    DATA_AS_OF_FIELD_NUMBER: _ClassVar[int]
    region: str
    version: str
    entries: _containers.RepeatedCompositeFieldContainer[CatalogueEntry]
    data_as_of: _timestamp_pb2.Timestamp
    def __init__(self, region: _Optional[str] = ..., version: _Optional[str] = ..., entries: _Optional[_Iterable[_Union[CatalogueEntry, _Mapping]]] = ..., data_as_of: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class QueryOptions(_message.Message):
    __slots__ = ("profile", "years", "application_date")
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    YEARS_FIELD_NUMBER: _ClassVar[int]
    APPLICATION_DATE_FIELD_NUMBER: _ClassVar[int]
    profile: str
    years: int
    application_date: Date
    def __init__(self, profile: _Optional[str] = ..., years: _Optional[int] = ..., application_date: _Optional[_Union[Date, _Mapping]] = ...) -> None: ...

class ProfileRef(_message.Message):
    __slots__ = ("id", "version")
    ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    id: str
    version: int
    def __init__(self, id: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class Window(_message.Message):
    __slots__ = ("application_date", "years", "start", "cutoff", "calendar_exact", "calendar_note")
    APPLICATION_DATE_FIELD_NUMBER: _ClassVar[int]
    YEARS_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    CUTOFF_FIELD_NUMBER: _ClassVar[int]
    CALENDAR_EXACT_FIELD_NUMBER: _ClassVar[int]
    CALENDAR_NOTE_FIELD_NUMBER: _ClassVar[int]
    application_date: Date
    years: int
    start: Date
    cutoff: Date
    calendar_exact: bool
    calendar_note: str
    def __init__(self, application_date: _Optional[_Union[Date, _Mapping]] = ..., years: _Optional[int] = ..., start: _Optional[_Union[Date, _Mapping]] = ..., cutoff: _Optional[_Union[Date, _Mapping]] = ..., calendar_exact: _Optional[bool] = ..., calendar_note: _Optional[str] = ...) -> None: ...

class QuerySubjectRequest(_message.Message):
    __slots__ = ("subject_id", "subject_kind", "options", "purpose", "known_coverage")
    SUBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_KIND_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    KNOWN_COVERAGE_FIELD_NUMBER: _ClassVar[int]
    subject_id: str
    subject_kind: SubjectKind
    options: QueryOptions
    purpose: str
    known_coverage: bytes
    def __init__(self, subject_id: _Optional[str] = ..., subject_kind: _Optional[_Union[SubjectKind, str]] = ..., options: _Optional[_Union[QueryOptions, _Mapping]] = ..., purpose: _Optional[str] = ..., known_coverage: _Optional[bytes] = ...) -> None: ...

class SubjectQuery(_message.Message):
    __slots__ = ("query", "assertion")
    QUERY_FIELD_NUMBER: _ClassVar[int]
    ASSERTION_FIELD_NUMBER: _ClassVar[int]
    query: QuerySubjectRequest
    assertion: str
    def __init__(self, query: _Optional[_Union[QuerySubjectRequest, _Mapping]] = ..., assertion: _Optional[str] = ...) -> None: ...

class QuerySubjectsRequest(_message.Message):
    __slots__ = ("queries",)
    QUERIES_FIELD_NUMBER: _ClassVar[int]
    queries: _containers.RepeatedCompositeFieldContainer[SubjectQuery]
    def __init__(self, queries: _Optional[_Iterable[_Union[SubjectQuery, _Mapping]]] = ...) -> None: ...

class SubjectOutcome(_message.Message):
    __slots__ = ("result", "error")
    RESULT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    result: SubjectResult
    error: bytes
    def __init__(self, result: _Optional[_Union[SubjectResult, _Mapping]] = ..., error: _Optional[bytes] = ...) -> None: ...

class QuerySubjectsResponse(_message.Message):
    __slots__ = ("outcomes",)
    OUTCOMES_FIELD_NUMBER: _ClassVar[int]
    outcomes: _containers.RepeatedCompositeFieldContainer[SubjectOutcome]
    def __init__(self, outcomes: _Optional[_Iterable[_Union[SubjectOutcome, _Mapping]]] = ...) -> None: ...

class Provenance(_message.Message):
    __slots__ = ("source", "ingested_at", "content_hash")
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    INGESTED_AT_FIELD_NUMBER: _ClassVar[int]
    CONTENT_HASH_FIELD_NUMBER: _ClassVar[int]
    source: str
    ingested_at: _timestamp_pb2.Timestamp
    content_hash: str
    def __init__(self, source: _Optional[str] = ..., ingested_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., content_hash: _Optional[str] = ...) -> None: ...

class CreditRecord(_message.Message):
    __slots__ = ("record_id", "version", "subject_id", "subject_kind", "subject_name", "domain", "scope", "decision_no", "authority", "decided_on", "category", "content", "procedure", "status", "publicity_until", "removed_on", "provenance", "under_objection")
    RECORD_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_KIND_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_NAME_FIELD_NUMBER: _ClassVar[int]
    DOMAIN_FIELD_NUMBER: _ClassVar[int]
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    DECISION_NO_FIELD_NUMBER: _ClassVar[int]
    AUTHORITY_FIELD_NUMBER: _ClassVar[int]
    DECIDED_ON_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    PROCEDURE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    PUBLICITY_UNTIL_FIELD_NUMBER: _ClassVar[int]
    REMOVED_ON_FIELD_NUMBER: _ClassVar[int]
    PROVENANCE_FIELD_NUMBER: _ClassVar[int]
    UNDER_OBJECTION_FIELD_NUMBER: _ClassVar[int]
    record_id: str
    version: int
    subject_id: str
    subject_kind: SubjectKind
    subject_name: str
    domain: str
    scope: Scope
    decision_no: str
    authority: str
    decided_on: Date
    category: str
    content: str
    procedure: Procedure
    status: RecordStatus
    publicity_until: Date
    removed_on: Date
    provenance: Provenance
    under_objection: bool
    def __init__(self, record_id: _Optional[str] = ..., version: _Optional[int] = ..., subject_id: _Optional[str] = ..., subject_kind: _Optional[_Union[SubjectKind, str]] = ..., subject_name: _Optional[str] = ..., domain: _Optional[str] = ..., scope: _Optional[_Union[Scope, str]] = ..., decision_no: _Optional[str] = ..., authority: _Optional[str] = ..., decided_on: _Optional[_Union[Date, _Mapping]] = ..., category: _Optional[str] = ..., content: _Optional[str] = ..., procedure: _Optional[_Union[Procedure, str]] = ..., status: _Optional[_Union[RecordStatus, str]] = ..., publicity_until: _Optional[_Union[Date, _Mapping]] = ..., removed_on: _Optional[_Union[Date, _Mapping]] = ..., provenance: _Optional[_Union[Provenance, _Mapping]] = ..., under_objection: _Optional[bool] = ...) -> None: ...

class ExclusionCount(_message.Message):
    __slots__ = ("reason", "count")
    REASON_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    reason: Exclusion
    count: int
    def __init__(self, reason: _Optional[_Union[Exclusion, str]] = ..., count: _Optional[int] = ...) -> None: ...

class DomainResult(_message.Message):
    __slots__ = ("domain", "scope", "outcome", "records", "excluded")
    DOMAIN_FIELD_NUMBER: _ClassVar[int]
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    EXCLUDED_FIELD_NUMBER: _ClassVar[int]
    domain: str
    scope: Scope
    outcome: Outcome
    records: _containers.RepeatedCompositeFieldContainer[CreditRecord]
    excluded: _containers.RepeatedCompositeFieldContainer[ExclusionCount]
    def __init__(self, domain: _Optional[str] = ..., scope: _Optional[_Union[Scope, str]] = ..., outcome: _Optional[_Union[Outcome, str]] = ..., records: _Optional[_Iterable[_Union[CreditRecord, _Mapping]]] = ..., excluded: _Optional[_Iterable[_Union[ExclusionCount, _Mapping]]] = ...) -> None: ...

class SubjectResult(_message.Message):
    __slots__ = ("region", "subject_id", "subject_kind", "profile", "window", "catalogue_version", "data_as_of", "results", "warnings", "replica", "register_searched", "registration", "no_record_omitted")
    REGION_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_KIND_FIELD_NUMBER: _ClassVar[int]
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    CATALOGUE_VERSION_FIELD_NUMBER: _ClassVar[int]
    DATA_AS_OF_FIELD_NUMBER: _ClassVar[int]
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    REPLICA_FIELD_NUMBER: _ClassVar[int]
    REGISTER_SEARCHED_FIELD_NUMBER: _ClassVar[int]
    REGISTRATION_FIELD_NUMBER: _ClassVar[int]
    NO_RECORD_OMITTED_FIELD_NUMBER: _ClassVar[int]
    region: str
    subject_id: str
    subject_kind: SubjectKind
    profile: ProfileRef
    window: Window
    catalogue_version: str
    data_as_of: _timestamp_pb2.Timestamp
    results: _containers.RepeatedCompositeFieldContainer[DomainResult]
    warnings: _containers.RepeatedScalarFieldContainer[str]
    replica: ReplicaInfo
    register_searched: bool
    registration: Registration
    no_record_omitted: bool
    def __init__(self, region: _Optional[str] = ..., subject_id: _Optional[str] = ..., subject_kind: _Optional[_Union[SubjectKind, str]] = ..., profile: _Optional[_Union[ProfileRef, _Mapping]] = ..., window: _Optional[_Union[Window, _Mapping]] = ..., catalogue_version: _Optional[str] = ..., data_as_of: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., results: _Optional[_Iterable[_Union[DomainResult, _Mapping]]] = ..., warnings: _Optional[_Iterable[str]] = ..., replica: _Optional[_Union[ReplicaInfo, _Mapping]] = ..., register_searched: _Optional[bool] = ..., registration: _Optional[_Union[Registration, _Mapping]] = ..., no_record_omitted: _Optional[bool] = ...) -> None: ...

class Registration(_message.Message):
    __slots__ = ("name", "legal_representative", "address", "authority", "established_on", "status")
    NAME_FIELD_NUMBER: _ClassVar[int]
    LEGAL_REPRESENTATIVE_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    AUTHORITY_FIELD_NUMBER: _ClassVar[int]
    ESTABLISHED_ON_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    name: str
    legal_representative: str
    address: str
    authority: str
    established_on: Date
    status: str
    def __init__(self, name: _Optional[str] = ..., legal_representative: _Optional[str] = ..., address: _Optional[str] = ..., authority: _Optional[str] = ..., established_on: _Optional[_Union[Date, _Mapping]] = ..., status: _Optional[str] = ...) -> None: ...

class ReplicaInfo(_message.Message):
    __slots__ = ("served_by", "replica_as_of", "last_seq")
    SERVED_BY_FIELD_NUMBER: _ClassVar[int]
    REPLICA_AS_OF_FIELD_NUMBER: _ClassVar[int]
    LAST_SEQ_FIELD_NUMBER: _ClassVar[int]
    served_by: str
    replica_as_of: _timestamp_pb2.Timestamp
    last_seq: int
    def __init__(self, served_by: _Optional[str] = ..., replica_as_of: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_seq: _Optional[int] = ...) -> None: ...

class CheckSubjectsRequest(_message.Message):
    __slots__ = ("subject_ids", "options", "purpose", "sparse")
    SUBJECT_IDS_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    SPARSE_FIELD_NUMBER: _ClassVar[int]
    subject_ids: _containers.RepeatedScalarFieldContainer[str]
    options: QueryOptions
    purpose: str
    sparse: bool
    def __init__(self, subject_ids: _Optional[_Iterable[str]] = ..., options: _Optional[_Union[QueryOptions, _Mapping]] = ..., purpose: _Optional[str] = ..., sparse: _Optional[bool] = ...) -> None: ...

class Hit(_message.Message):
    __slots__ = ("domain", "scope", "count")
    DOMAIN_FIELD_NUMBER: _ClassVar[int]
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    domain: str
    scope: Scope
    count: int
    def __init__(self, domain: _Optional[str] = ..., scope: _Optional[_Union[Scope, str]] = ..., count: _Optional[int] = ...) -> None: ...

class SubjectCheck(_message.Message):
    __slots__ = ("subject_id", "subject_kind", "rejected", "hits", "warnings", "index")
    SUBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_KIND_FIELD_NUMBER: _ClassVar[int]
    REJECTED_FIELD_NUMBER: _ClassVar[int]
    HITS_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    subject_id: str
    subject_kind: SubjectKind
    rejected: str
    hits: _containers.RepeatedCompositeFieldContainer[Hit]
    warnings: _containers.RepeatedScalarFieldContainer[str]
    index: int
    def __init__(self, subject_id: _Optional[str] = ..., subject_kind: _Optional[_Union[SubjectKind, str]] = ..., rejected: _Optional[str] = ..., hits: _Optional[_Iterable[_Union[Hit, _Mapping]]] = ..., warnings: _Optional[_Iterable[str]] = ..., index: _Optional[int] = ...) -> None: ...

class CheckSubjectsResponse(_message.Message):
    __slots__ = ("region", "profile", "window", "catalogue_version", "data_as_of", "checks", "sparse", "kinds")
    REGION_FIELD_NUMBER: _ClassVar[int]
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    CATALOGUE_VERSION_FIELD_NUMBER: _ClassVar[int]
    DATA_AS_OF_FIELD_NUMBER: _ClassVar[int]
    CHECKS_FIELD_NUMBER: _ClassVar[int]
    SPARSE_FIELD_NUMBER: _ClassVar[int]
    KINDS_FIELD_NUMBER: _ClassVar[int]
    region: str
    profile: ProfileRef
    window: Window
    catalogue_version: str
    data_as_of: _timestamp_pb2.Timestamp
    checks: _containers.RepeatedCompositeFieldContainer[SubjectCheck]
    sparse: bool
    kinds: bytes
    def __init__(self, region: _Optional[str] = ..., profile: _Optional[_Union[ProfileRef, _Mapping]] = ..., window: _Optional[_Union[Window, _Mapping]] = ..., catalogue_version: _Optional[str] = ..., data_as_of: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., checks: _Optional[_Iterable[_Union[SubjectCheck, _Mapping]]] = ..., sparse: _Optional[bool] = ..., kinds: _Optional[bytes] = ...) -> None: ...

class WatchChangesRequest(_message.Message):
    __slots__ = ("after_seq", "follow", "max_batch")
    AFTER_SEQ_FIELD_NUMBER: _ClassVar[int]
    FOLLOW_FIELD_NUMBER: _ClassVar[int]
    MAX_BATCH_FIELD_NUMBER: _ClassVar[int]
    after_seq: int
    follow: bool
    max_batch: int
    def __init__(self, after_seq: _Optional[int] = ..., follow: _Optional[bool] = ..., max_batch: _Optional[int] = ...) -> None: ...

class RecordChange(_message.Message):
    __slots__ = ("seq", "region", "record")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    RECORD_FIELD_NUMBER: _ClassVar[int]
    seq: int
    region: str
    record: CreditRecord
    def __init__(self, seq: _Optional[int] = ..., region: _Optional[str] = ..., record: _Optional[_Union[CreditRecord, _Mapping]] = ...) -> None: ...

class ChangeBatch(_message.Message):
    __slots__ = ("region", "changes", "caught_up", "head_seq", "data_as_of", "disputes")
    REGION_FIELD_NUMBER: _ClassVar[int]
    CHANGES_FIELD_NUMBER: _ClassVar[int]
    CAUGHT_UP_FIELD_NUMBER: _ClassVar[int]
    HEAD_SEQ_FIELD_NUMBER: _ClassVar[int]
    DATA_AS_OF_FIELD_NUMBER: _ClassVar[int]
    DISPUTES_FIELD_NUMBER: _ClassVar[int]
    region: str
    changes: _containers.RepeatedCompositeFieldContainer[RecordChange]
    caught_up: bool
    head_seq: int
    data_as_of: _timestamp_pb2.Timestamp
    disputes: Disputes
    def __init__(self, region: _Optional[str] = ..., changes: _Optional[_Iterable[_Union[RecordChange, _Mapping]]] = ..., caught_up: _Optional[bool] = ..., head_seq: _Optional[int] = ..., data_as_of: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., disputes: _Optional[_Union[Disputes, _Mapping]] = ...) -> None: ...

class Disputes(_message.Message):
    __slots__ = ("record_ids",)
    RECORD_IDS_FIELD_NUMBER: _ClassVar[int]
    record_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, record_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class QueryReplicaRequest(_message.Message):
    __slots__ = ("origin", "query")
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    QUERY_FIELD_NUMBER: _ClassVar[int]
    origin: str
    query: QuerySubjectRequest
    def __init__(self, origin: _Optional[str] = ..., query: _Optional[_Union[QuerySubjectRequest, _Mapping]] = ...) -> None: ...

class JointDisciplineRequest(_message.Message):
    __slots__ = ("subject_id", "subject_kind", "scopes", "on_date", "purpose")
    SUBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_KIND_FIELD_NUMBER: _ClassVar[int]
    SCOPES_FIELD_NUMBER: _ClassVar[int]
    ON_DATE_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    subject_id: str
    subject_kind: SubjectKind
    scopes: _containers.RepeatedScalarFieldContainer[Scope]
    on_date: Date
    purpose: str
    def __init__(self, subject_id: _Optional[str] = ..., subject_kind: _Optional[_Union[SubjectKind, str]] = ..., scopes: _Optional[_Iterable[_Union[Scope, str]]] = ..., on_date: _Optional[_Union[Date, _Mapping]] = ..., purpose: _Optional[str] = ...) -> None: ...

class RegionDiscipline(_message.Message):
    __slots__ = ("region", "replicated", "entries", "replica_as_of", "data_as_of", "last_seq")
    REGION_FIELD_NUMBER: _ClassVar[int]
    REPLICATED_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    REPLICA_AS_OF_FIELD_NUMBER: _ClassVar[int]
    DATA_AS_OF_FIELD_NUMBER: _ClassVar[int]
    LAST_SEQ_FIELD_NUMBER: _ClassVar[int]
    region: str
    replicated: bool
    entries: _containers.RepeatedCompositeFieldContainer[CreditRecord]
    replica_as_of: _timestamp_pb2.Timestamp
    data_as_of: _timestamp_pb2.Timestamp
    last_seq: int
    def __init__(self, region: _Optional[str] = ..., replicated: _Optional[bool] = ..., entries: _Optional[_Iterable[_Union[CreditRecord, _Mapping]]] = ..., replica_as_of: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., data_as_of: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_seq: _Optional[int] = ...) -> None: ...

class JointDisciplineResponse(_message.Message):
    __slots__ = ("region", "subject_id", "subject_kind", "on_date", "scopes", "regions", "warnings")
    REGION_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_KIND_FIELD_NUMBER: _ClassVar[int]
    ON_DATE_FIELD_NUMBER: _ClassVar[int]
    SCOPES_FIELD_NUMBER: _ClassVar[int]
    REGIONS_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    region: str
    subject_id: str
    subject_kind: SubjectKind
    on_date: Date
    scopes: _containers.RepeatedScalarFieldContainer[Scope]
    regions: _containers.RepeatedCompositeFieldContainer[RegionDiscipline]
    warnings: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, region: _Optional[str] = ..., subject_id: _Optional[str] = ..., subject_kind: _Optional[_Union[SubjectKind, str]] = ..., on_date: _Optional[_Union[Date, _Mapping]] = ..., scopes: _Optional[_Iterable[_Union[Scope, str]]] = ..., regions: _Optional[_Iterable[_Union[RegionDiscipline, _Mapping]]] = ..., warnings: _Optional[_Iterable[str]] = ...) -> None: ...

class Attachment(_message.Message):
    __slots__ = ("filename", "content_type", "data", "sha256", "size")
    FILENAME_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    filename: str
    content_type: str
    data: bytes
    sha256: str
    size: int
    def __init__(self, filename: _Optional[str] = ..., content_type: _Optional[str] = ..., data: _Optional[bytes] = ..., sha256: _Optional[str] = ..., size: _Optional[int] = ...) -> None: ...

class Objection(_message.Message):
    __slots__ = ("number", "region", "kind", "state", "record_id", "record_version", "subject_id", "reason", "attachment", "filed_by", "filed_at", "resolution", "resolution_note", "resolved_by", "resolved_at", "new_version", "record")
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    RECORD_ID_FIELD_NUMBER: _ClassVar[int]
    RECORD_VERSION_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    ATTACHMENT_FIELD_NUMBER: _ClassVar[int]
    FILED_BY_FIELD_NUMBER: _ClassVar[int]
    FILED_AT_FIELD_NUMBER: _ClassVar[int]
    RESOLUTION_FIELD_NUMBER: _ClassVar[int]
    RESOLUTION_NOTE_FIELD_NUMBER: _ClassVar[int]
    RESOLVED_BY_FIELD_NUMBER: _ClassVar[int]
    RESOLVED_AT_FIELD_NUMBER: _ClassVar[int]
    NEW_VERSION_FIELD_NUMBER: _ClassVar[int]
    RECORD_FIELD_NUMBER: _ClassVar[int]
    number: str
    region: str
    kind: ObjectionKind
    state: ObjectionState
    record_id: str
    record_version: int
    subject_id: str
    reason: str
    attachment: Attachment
    filed_by: str
    filed_at: _timestamp_pb2.Timestamp
    resolution: Resolution
    resolution_note: str
    resolved_by: str
    resolved_at: _timestamp_pb2.Timestamp
    new_version: int
    record: CreditRecord
    def __init__(self, number: _Optional[str] = ..., region: _Optional[str] = ..., kind: _Optional[_Union[ObjectionKind, str]] = ..., state: _Optional[_Union[ObjectionState, str]] = ..., record_id: _Optional[str] = ..., record_version: _Optional[int] = ..., subject_id: _Optional[str] = ..., reason: _Optional[str] = ..., attachment: _Optional[_Union[Attachment, _Mapping]] = ..., filed_by: _Optional[str] = ..., filed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., resolution: _Optional[_Union[Resolution, str]] = ..., resolution_note: _Optional[str] = ..., resolved_by: _Optional[str] = ..., resolved_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., new_version: _Optional[int] = ..., record: _Optional[_Union[CreditRecord, _Mapping]] = ...) -> None: ...

class FileObjectionRequest(_message.Message):
    __slots__ = ("subject_id", "record_id", "kind", "reason", "attachment")
    SUBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    RECORD_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    ATTACHMENT_FIELD_NUMBER: _ClassVar[int]
    subject_id: str
    record_id: str
    kind: ObjectionKind
    reason: str
    attachment: Attachment
    def __init__(self, subject_id: _Optional[str] = ..., record_id: _Optional[str] = ..., kind: _Optional[_Union[ObjectionKind, str]] = ..., reason: _Optional[str] = ..., attachment: _Optional[_Union[Attachment, _Mapping]] = ...) -> None: ...

class ListObjectionsRequest(_message.Message):
    __slots__ = ("subject_id", "state", "kind", "limit", "before")
    SUBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    BEFORE_FIELD_NUMBER: _ClassVar[int]
    subject_id: str
    state: ObjectionState
    kind: ObjectionKind
    limit: int
    before: str
    def __init__(self, subject_id: _Optional[str] = ..., state: _Optional[_Union[ObjectionState, str]] = ..., kind: _Optional[_Union[ObjectionKind, str]] = ..., limit: _Optional[int] = ..., before: _Optional[str] = ...) -> None: ...

class ListObjectionsResponse(_message.Message):
    __slots__ = ("objections",)
    OBJECTIONS_FIELD_NUMBER: _ClassVar[int]
    objections: _containers.RepeatedCompositeFieldContainer[Objection]
    def __init__(self, objections: _Optional[_Iterable[_Union[Objection, _Mapping]]] = ...) -> None: ...

class GetObjectionRequest(_message.Message):
    __slots__ = ("number", "with_attachment", "subject_id")
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    WITH_ATTACHMENT_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    number: str
    with_attachment: bool
    subject_id: str
    def __init__(self, number: _Optional[str] = ..., with_attachment: _Optional[bool] = ..., subject_id: _Optional[str] = ...) -> None: ...

class Correction(_message.Message):
    __slots__ = ("category", "content", "decided_on", "publicity_until", "removed_on", "decision_no")
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    DECIDED_ON_FIELD_NUMBER: _ClassVar[int]
    PUBLICITY_UNTIL_FIELD_NUMBER: _ClassVar[int]
    REMOVED_ON_FIELD_NUMBER: _ClassVar[int]
    DECISION_NO_FIELD_NUMBER: _ClassVar[int]
    category: str
    content: str
    decided_on: Date
    publicity_until: Date
    removed_on: Date
    decision_no: str
    def __init__(self, category: _Optional[str] = ..., content: _Optional[str] = ..., decided_on: _Optional[_Union[Date, _Mapping]] = ..., publicity_until: _Optional[_Union[Date, _Mapping]] = ..., removed_on: _Optional[_Union[Date, _Mapping]] = ..., decision_no: _Optional[str] = ...) -> None: ...

class ResolveObjectionRequest(_message.Message):
    __slots__ = ("number", "resolution", "note", "correction")
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    RESOLUTION_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    CORRECTION_FIELD_NUMBER: _ClassVar[int]
    number: str
    resolution: Resolution
    note: str
    correction: Correction
    def __init__(self, number: _Optional[str] = ..., resolution: _Optional[_Union[Resolution, str]] = ..., note: _Optional[str] = ..., correction: _Optional[_Union[Correction, _Mapping]] = ...) -> None: ...

class RepairRecordRequest(_message.Message):
    __slots__ = ("record_id", "note")
    RECORD_ID_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    record_id: str
    note: str
    def __init__(self, record_id: _Optional[str] = ..., note: _Optional[str] = ...) -> None: ...
