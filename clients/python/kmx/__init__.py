"""kmx - the Python client of kmx, South Korea's music-industry statistics service.

    import kmx
    with kmx.Client("tcp://127.0.0.1:5555") as c:
        for row in c.query("exports", period="2024", by="market"):
            print(row["market"], row["category"], row["sum"], row["unit"])

Requests travel as Majordomo 7/MDP messages with kmx.v1 protobuf bodies (docs/clients.md);
text forms (periods, markets, units, amounts) are read by the services, exactly as for the
kmx CLI. Errors are kmx.Error exceptions with code, message and per-record results.
"""
from .client import (BROKER, INGEST, QUERY, STORAGE, Client, History, PutResult, QueryResult,
                     amount, event_dict, format_period, record_dict, to_pandas)
from .errors import (BadRequest, DeadlineExceeded, Error, Forbidden, Internal, NotFound, Rejected,
                     ResyncNeeded, StorageFull, Timeout, TooLarge, Unavailable, Unsupported)
from . import kmx_pb2 as pb

__all__ = ["__version__", "Client", "History", "PutResult", "QueryResult", "Error", "BadRequest",
           "NotFound", "Unavailable", "Internal", "TooLarge", "Unsupported", "ResyncNeeded", "StorageFull",
           "Forbidden", "DeadlineExceeded", "Timeout", "Rejected", "amount", "format_period", "record_dict",
           "event_dict", "to_pandas", "pb", "BROKER", "INGEST", "QUERY", "STORAGE"]
from ._version import __version__  # noqa: E402  (written by CMake from the project version)
