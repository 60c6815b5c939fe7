from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class LoginRequest(_message.Message):
    __slots__ = ("username", "password")
    USERNAME_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_FIELD_NUMBER: _ClassVar[int]
    username: str
    password: str
    def __init__(self, username: _Optional[str] = ..., password: _Optional[str] = ...) -> None: ...

class LoginResponse(_message.Message):
    __slots__ = ("token", "expires_in")
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_IN_FIELD_NUMBER: _ClassVar[int]
    token: str
    expires_in: int
    def __init__(self, token: _Optional[str] = ..., expires_in: _Optional[int] = ...) -> None: ...

class IssueReportRequest(_message.Message):
    __slots__ = ("subject_id", "years", "profile", "purpose", "application_date")
    SUBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    YEARS_FIELD_NUMBER: _ClassVar[int]
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    APPLICATION_DATE_FIELD_NUMBER: _ClassVar[int]
    subject_id: str
    years: int
    profile: str
    purpose: str
    application_date: str
    def __init__(self, subject_id: _Optional[str] = ..., years: _Optional[int] = ..., profile: _Optional[str] = ..., purpose: _Optional[str] = ..., application_date: _Optional[str] = ...) -> None: ...

class GetReportRequest(_message.Message):
    __slots__ = ("report_no",)
    REPORT_NO_FIELD_NUMBER: _ClassVar[int]
    report_no: str
    def __init__(self, report_no: _Optional[str] = ...) -> None: ...

class IssuedReport(_message.Message):
    __slots__ = ("report_no", "verification_code", "verdict", "status", "report_json", "jws")
    REPORT_NO_FIELD_NUMBER: _ClassVar[int]
    VERIFICATION_CODE_FIELD_NUMBER: _ClassVar[int]
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    REPORT_JSON_FIELD_NUMBER: _ClassVar[int]
    JWS_FIELD_NUMBER: _ClassVar[int]
    report_no: str
    verification_code: str
    verdict: str
    status: str
    report_json: str
    jws: str
    def __init__(self, report_no: _Optional[str] = ..., verification_code: _Optional[str] = ..., verdict: _Optional[str] = ..., status: _Optional[str] = ..., report_json: _Optional[str] = ..., jws: _Optional[str] = ...) -> None: ...

class VerifyCodeRequest(_message.Message):
    __slots__ = ("code",)
    CODE_FIELD_NUMBER: _ClassVar[int]
    code: str
    def __init__(self, code: _Optional[str] = ...) -> None: ...

class VerifyReportRequest(_message.Message):
    __slots__ = ("jws",)
    JWS_FIELD_NUMBER: _ClassVar[int]
    jws: str
    def __init__(self, jws: _Optional[str] = ...) -> None: ...

class Verification(_message.Message):
    __slots__ = ("genuine", "status", "reason", "summary_json")
    GENUINE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_JSON_FIELD_NUMBER: _ClassVar[int]
    genuine: bool
    status: str
    reason: str
    summary_json: str
    def __init__(self, genuine: _Optional[bool] = ..., status: _Optional[str] = ..., reason: _Optional[str] = ..., summary_json: _Optional[str] = ...) -> None: ...

class RedeemGrantRequest(_message.Message):
    __slots__ = ("code",)
    CODE_FIELD_NUMBER: _ClassVar[int]
    code: str
    def __init__(self, code: _Optional[str] = ...) -> None: ...

class RedeemedGrant(_message.Message):
    __slots__ = ("report", "purpose", "uses_left", "expires_at")
    REPORT_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    USES_LEFT_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    report: IssuedReport
    purpose: str
    uses_left: int
    expires_at: str
    def __init__(self, report: _Optional[_Union[IssuedReport, _Mapping]] = ..., purpose: _Optional[str] = ..., uses_left: _Optional[int] = ..., expires_at: _Optional[str] = ...) -> None: ...

class SubmitBatchRequest(_message.Message):
    __slots__ = ("purpose", "subject_ids", "years", "profile")
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_IDS_FIELD_NUMBER: _ClassVar[int]
    YEARS_FIELD_NUMBER: _ClassVar[int]
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    purpose: str
    subject_ids: _containers.RepeatedScalarFieldContainer[str]
    years: int
    profile: str
    def __init__(self, purpose: _Optional[str] = ..., subject_ids: _Optional[_Iterable[str]] = ..., years: _Optional[int] = ..., profile: _Optional[str] = ...) -> None: ...

class GetBatchRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class RegionProgress(_message.Message):
    __slots__ = ("region", "chunks_done", "chunks")
    REGION_FIELD_NUMBER: _ClassVar[int]
    CHUNKS_DONE_FIELD_NUMBER: _ClassVar[int]
    CHUNKS_FIELD_NUMBER: _ClassVar[int]
    region: str
    chunks_done: int
    chunks: int
    def __init__(self, region: _Optional[str] = ..., chunks_done: _Optional[int] = ..., chunks: _Optional[int] = ...) -> None: ...

class BatchStatus(_message.Message):
    __slots__ = ("job_id", "status", "total", "progress", "summary_json", "summary_jws")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_JSON_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_JWS_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    status: str
    total: int
    progress: _containers.RepeatedCompositeFieldContainer[RegionProgress]
    summary_json: str
    summary_jws: str
    def __init__(self, job_id: _Optional[str] = ..., status: _Optional[str] = ..., total: _Optional[int] = ..., progress: _Optional[_Iterable[_Union[RegionProgress, _Mapping]]] = ..., summary_json: _Optional[str] = ..., summary_jws: _Optional[str] = ...) -> None: ...

class BatchTablePiece(_message.Message):
    __slots__ = ("csv",)
    CSV_FIELD_NUMBER: _ClassVar[int]
    csv: bytes
    def __init__(self, csv: _Optional[bytes] = ...) -> None: ...
