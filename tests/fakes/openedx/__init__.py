"""A fake Open edX for tests and the benchmark: LMS OAuth2, LMS, Studio, Discovery, Credentials.

Built to ``reference/openedx-services.md``. In a test::

    fake = FakeOpenEdx.start()            # 127.0.0.1, ephemeral port, one listener
    fake.urls                             # {"oauth": ".../oauth2", "credentials": ..., ...}
    fake.add_user("alice", 42)
    fake.add_course_run("course-v1:edX+C1+1T2026", modes=("audit", "verified"))
    fake.add_program(uuid, {"edX+C1": {"course-v1:edX+C1+1T2026": "verified"}})
    fake.add_lms_certificate("alice", "course-v1:edX+C1+1T2026", mode="verified")
    ...                                   # run the worker with DEFAULT_CLIENT_ID / _SECRET
    fake.writes(username="alice")         # RequestRecords of every POST, by start time
    fake.credentials("alice")             # Credentials' state now
    fake.stats().max_in_flight_per_learner
    fake.stop()

Knobs, settable while it runs, per service or per endpoint (``endpoint=`` one of
``access_token``, ``credentials_list``, ``credentials_post``, ``course_certificates_post``,
``certificates_list``, ``certificate_detail``, ``course_modes``, ``course_details``,
``programs_list``, ``program_detail``)::

    fake.set_latency("credentials", 0.5, endpoint="credentials_post")
    fake.set_error("credentials", 500, rate=0.1)         # or times=2 for "fail twice"
    fake.set_error("lms", 429, retry_after=7)
    fake.set_answer("studio", {"end_date": 5}, endpoint="course_details")  # a malformed 200
    fake.set_error("credentials", 500, username="alice")  # only requests about one learner
    fake.set_outage("credentials", "refused")            # or "reset", "503"; duration=...
    fake.set_chaos("lms", error_rate=0.02, timeout_rate=0.005, reset_rate=0.01)  # random noise
    fake.clear_outage()                                  # listens again on the same port
    fake.expire_tokens(); fake.set_token_lifetime(5)
    fake.set_program_not_configured_status(404)          # older Credentials
    fake.reset()

As a process (for the benchmark): ``python -m tests.fakes.openedx --port 18000``; drive it
with ``RemoteFake(url).call("add_user", username="alice", lms_user_id=42)`` (every method
above is callable through ``POST /_fake/call``; ``save_records(path)`` writes the request
log as JSON lines, ``issued_tokens()`` lists every token handed out).
"""

from tests.fakes.openedx.model import RequestRecord, Stats
from tests.fakes.openedx.remote import RemoteFake
from tests.fakes.openedx.server import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    SERVICE_USERNAME,
    FakeOpenEdx,
)

__all__ = [
    "DEFAULT_CLIENT_ID",
    "DEFAULT_CLIENT_SECRET",
    "SERVICE_USERNAME",
    "FakeOpenEdx",
    "RemoteFake",
    "RequestRecord",
    "Stats",
]
