"""Exceptions of the kmx client: one per kmx.v1.ErrorCode, all subclasses of kmx.Error."""


class Error(Exception):
    """A request that failed.

    code     the wire error code's name ("BAD_REQUEST", "UNAVAILABLE", ...), or "TIMEOUT"
             when no try was answered
    message  the service's sentence saying what is wrong
    service  the service asked ("kmx.ingest", "kmx.query", "kmx.broker")
    records  for batches, one dict per rejected record: index, row, field, column,
             reason, duplicate_of, duplicate_row (absent members are None)
    """

    def __init__(self, code, message, service=None, records=None):
        super().__init__("%s: %s%s" % (service or "kmx", message or code,
                                       "" if not message else " (%s)" % code))
        self.code = code
        self.message = message or ""
        self.service = service
        self.records = list(records or [])


class BadRequest(Error):
    """BAD_REQUEST: the request is malformed or invalid (an unknown market, a bad period)."""


class NotFound(Error):
    """NOT_FOUND: no record has that key (or no key of a delete was found)."""


class Unavailable(Error):
    """UNAVAILABLE: a service behind the broker did not answer; retrying may help."""


class Internal(Error):
    """INTERNAL: a service failed."""


class TooLarge(Error):
    """TOO_LARGE: the request is beyond a limit."""


class Unsupported(Error):
    """UNSUPPORTED: that service does not handle that request."""


class ResyncNeeded(Error):
    """RESYNC_NEEDED: the events asked for are no longer kept."""


class StorageFull(Error):
    """STORAGE_FULL: storage cannot grow."""


class Forbidden(Error):
    """FORBIDDEN: the client's CURVE key (its role) may not make this request."""


class DeadlineExceeded(Error):
    """DEADLINE_EXCEEDED: the answer was not ready within the try's timeout (the client
    sends it with each request); ask again with a longer timeout."""


class Timeout(Error):
    """No reply within timeout, on every try (is the broker running?)."""


class Rejected(Error):
    """put or import_file: some records were rejected. `result` holds the whole PutResult
    (what was stored too); `records` the rejected ones."""

    def __init__(self, message, service, records, result):
        super().__init__("REJECTED", message, service, records)
        self.result = result


BY_CODE = {
    "BAD_REQUEST": BadRequest,
    "NOT_FOUND": NotFound,
    "UNAVAILABLE": Unavailable,
    "INTERNAL": Internal,
    "TOO_LARGE": TooLarge,
    "UNSUPPORTED": Unsupported,
    "RESYNC_NEEDED": ResyncNeeded,
    "STORAGE_FULL": StorageFull,
    "FORBIDDEN": Forbidden,
    "DEADLINE_EXCEEDED": DeadlineExceeded,
}
