"""Discovery's programs and the program cache: index by run, stale copies, background refresh."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from consumer.errors import ServiceUnavailableError
from consumer.programs import Program, ProgramCourse, ProgramRun
from consumer.services.bundle import Services, build_services
from consumer.services.discovery import DiscoveryClient
from consumer.services.program_cache import CacheState, ProgramCache
from tests.fakes.openedx import FakeOpenEdx
from tests.fakes.openedx.settings import service_settings
from tests.support.clock import FakeClock

P1 = "11111111-1111-4111-8111-111111111111"
P2 = "22222222-2222-4222-8222-222222222222"
RUN_A = "course-v1:edX+A+1T2026"
RUN_A2 = "course-v1:edX+A+2T2026"
RUN_B = "course-v1:edX+B+1T2026"


@pytest.fixture
def fake() -> Iterator[FakeOpenEdx]:
    fake = FakeOpenEdx.start()
    fake.add_program(P1, {"edX+A": {RUN_A: "verified", RUN_A2: None}, "edX+B": {RUN_B: "credit"}})
    fake.add_program(P2, {"edX+B": {RUN_B: "credit"}}, status="retired")
    fake.add_program("33333333-3333-4333-8333-333333333333", {}, status="unpublished")
    yield fake
    fake.stop()


def client(services: Services) -> DiscoveryClient:
    assert services.discovery is not None
    return services.discovery


def test_program_list_is_active_and_retired_uuids(services: Services) -> None:
    """The list asks for active and retired programs, UUIDs only."""
    assert sorted(client(services).program_uuids(request_id="e")) == [P1, P2]


def test_program_details_reduce_to_program_values(services: Services) -> None:
    """A program's details become a Program with courses, runs and seat types (None: no seats)."""
    assert client(services).program(P1, request_id="e") == Program(
        uuid=P1,
        status="active",
        courses=(
            ProgramCourse(
                key="edX+A",
                runs=(
                    ProgramRun(key=RUN_A, seat_type="verified"),
                    ProgramRun(key=RUN_A2, seat_type=None),
                ),
            ),
            ProgramCourse(key="edX+B", runs=(ProgramRun(key=RUN_B, seat_type="credit"),)),
        ),
    )


def test_cache_indexes_programs_by_run(services: Services) -> None:
    """Programs containing any of the given runs come back once each, sorted by UUID."""
    cache = ProgramCache(client(services), ttl=300)
    assert [program.uuid for program in cache.programs_for_runs([RUN_A])] == [P1]
    assert [program.uuid for program in cache.programs_for_runs([RUN_B, RUN_A])] == [P1, P2]
    assert cache.programs_for_runs(["course-v1:edX+None+1T2026"]) == ()


def test_stale_copy_is_served_while_discovery_is_down(
    fake: FakeOpenEdx, services: Services
) -> None:
    """After a failed refresh the last good copy is still served, and the state says stale."""
    clock = FakeClock(500.0)
    states: list[CacheState] = []
    cache = ProgramCache(client(services), ttl=300, clock=clock, on_refresh=states.append)
    assert cache.refresh()
    fake.set_outage("discovery", "503")
    clock.now += 60
    assert not cache.refresh()
    state = cache.state()
    assert [program.uuid for program in cache.programs_for_runs([RUN_A])] == [P1]
    assert (state.ready, state.stale, state.programs, state.age_seconds) == (True, True, 2, 60.0)
    assert state.last_error == "http_503"
    assert [item.stale for item in states] == [False, True]


def test_recovery_clears_the_stale_state(fake: FakeOpenEdx, services: Services) -> None:
    """A successful refresh after an outage makes the cache fresh again."""
    cache = ProgramCache(client(services), ttl=300)
    cache.refresh()
    fake.set_outage("discovery", "refused")
    cache.refresh()
    fake.clear_outage()
    assert cache.refresh()
    assert not cache.state().stale


def test_no_copy_and_discovery_down_is_an_outage(fake: FakeOpenEdx, services: Services) -> None:
    """Without any copy, reading the cache raises an outage for discovery, never an empty answer."""
    fake.set_outage("discovery", "503")
    cache = ProgramCache(client(services), ttl=300)
    with pytest.raises(ServiceUnavailableError) as caught:
        cache.programs_for_runs([RUN_A])
    assert (caught.value.service, caught.value.reason) == ("discovery", "program_cache_empty")


def test_failed_details_keep_the_previous_copy(fake: FakeOpenEdx, services: Services) -> None:
    """A program whose details fail keeps its previous copy; a new one without copy is missing."""
    cache = ProgramCache(client(services), ttl=300)
    cache.refresh()
    fake.add_program(
        "44444444-4444-4444-8444-444444444444", {"edX+C": {"course-v1:edX+C+1": "verified"}}
    )
    fake.set_error("discovery", 500, endpoint="program_detail")
    assert cache.refresh()
    state = cache.state()
    assert [program.uuid for program in cache.programs_for_runs([RUN_A])] == [P1]
    assert (state.incomplete, cache.index().missing) == (
        True,
        ("44444444-4444-4444-8444-444444444444",),
    )


class GatedDiscovery(DiscoveryClient):
    """Holds every program-detail fetch until the test opens the gate."""

    def __init__(self, inner: DiscoveryClient) -> None:
        self._inner = inner
        self.gate = threading.Event()
        self.waiting = threading.Event()

    def program_uuids(self, *, request_id: str) -> tuple[str, ...]:
        return self._inner.program_uuids(request_id=request_id)

    def program(self, uuid: str, *, request_id: str) -> Program:
        self.waiting.set()
        self.gate.wait(10)
        return self._inner.program(uuid, request_id=request_id)


def test_readers_get_the_old_copy_while_a_refresh_runs(services: Services) -> None:
    """A refresh in progress does not block readers: they get the current copy meanwhile."""
    gated = GatedDiscovery(client(services))
    gated.gate.set()
    cache = ProgramCache(gated, ttl=300)
    cache.refresh()
    before = cache.index()
    gated.gate.clear()
    gated.waiting.clear()
    refresher = threading.Thread(target=cache.refresh)
    refresher.start()
    gated.waiting.wait(10)
    during = cache.index()
    gated.gate.set()
    refresher.join(10)
    assert during is before
    assert cache.index() is not before


def test_background_refresher_loads_the_first_copy(services: Services) -> None:
    """With the refresher started, the first read waits for the first copy and gets it."""
    states: list[CacheState] = []
    cache = ProgramCache(client(services), ttl=300, on_refresh=states.append)
    cache.start()
    try:
        programs = cache.programs_for_runs([RUN_B])
    finally:
        cache.stop()
    assert [program.uuid for program in programs] == [P1, P2]
    assert states[0].ready


def test_services_build_a_cache_only_with_discovery(fake: FakeOpenEdx) -> None:
    """Without COURSE_CATALOG_API_URL there is neither a Discovery client nor a program cache."""
    services = build_services(service_settings(fake, discovery_url=None))
    try:
        assert (services.discovery, services.programs) == (None, None)
    finally:
        services.close()


def test_background_refresher_failing_first_load_is_an_outage(
    fake: FakeOpenEdx, services: Services
) -> None:
    """When the refresher's first load fails, readers get a discovery outage instead of waiting."""
    fake.set_outage("discovery", "503")
    states: list[CacheState] = []
    cache = ProgramCache(client(services), ttl=300, on_refresh=states.append)
    cache.start()
    try:
        with pytest.raises(ServiceUnavailableError) as caught:
            cache.programs_for_runs([RUN_A])
    finally:
        cache.stop()
    assert caught.value.reason == "program_cache_empty"
    assert (states[0].ready, states[0].consecutive_failures) == (False, 1)
