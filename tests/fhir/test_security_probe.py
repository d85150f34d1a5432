"""Regressions of the security probe (issue 10): concurrent writes, atomic conditional creates,
the audit trail, NUL characters, element types and repeatable imports, over real HTTP."""

import uuid
from concurrent.futures import ThreadPoolExecutor

from conftest import FIXTURES, run_ehr
from test_fhir_api import outcome, patient


def test_concurrent_puts_all_succeed(server):
    run = uuid.uuid4().hex[:8]

    def put(n):
        return server.put(f"Patient/repro-{run}-{n}", patient(f"Repro{n}", id=f"repro-{run}-{n}")).status_code

    with ThreadPoolExecutor(20) as pool:
        statuses = list(pool.map(put, range(20)))
    assert statuses == [201] * 20
    for n in range(20):
        assert server.get(f"Patient/repro-{run}-{n}").json()["name"][0]["family"] == f"Repro{n}"


def test_parallel_conditional_creates_make_one_resource(server):
    mrn = uuid.uuid4().hex

    def create(n):
        body = patient(f"Twin{n}", identifier=[{"system": "http://hospital.example/mrn", "value": mrn}])
        response = server.post("Patient", body, headers={"If-None-Exist": f"identifier=http://hospital.example/mrn|{mrn}"})
        return response.status_code, response.json()["id"]

    with ThreadPoolExecutor(10) as pool:
        results = list(pool.map(create, range(10)))
    assert sorted(status for status, _ in results) == [200] * 9 + [201]
    assert len({id for _, id in results}) == 1
    assert server.get("Patient", identifier=f"http://hospital.example/mrn|{mrn}").json()["total"] == 1


def test_audit_trail_is_the_servers_own(server, validate):
    writer = server.token(f"writer-{uuid.uuid4().hex[:6]}", "user/*.write")
    forged = {"resourceType": "AuditEvent", "type": {"code": "rest"}, "action": "R", "recorded": "2001-01-01T00:00:00Z",
              "agent": [{"who": {"display": "someone-else"}, "requestor": True}], "source": {"observer": {"display": "x"}}}
    outcome(server.post("AuditEvent", forged, token=writer), 405, validate, "written by this server only")
    refusals = server.get("AuditEvent", outcome="4", subtype="create", _count=1000).json()
    assert any(e["resource"]["agent"][0]["who"]["display"].startswith("writer-") for e in refusals.get("entry", []))
    mine = server.post("Patient", patient("Own")).json()
    app = server.token(f"app-{uuid.uuid4().hex[:6]}", "patient/*.read", patient=mine["id"])
    outcome(server.get("AuditEvent", token=app), 403, validate, "patient/ scopes")


def test_nul_characters_get_a_400(server, validate):
    outcome(server.post("Patient", patient("Nu\u0000ll")), 400, validate, "NUL")
    outcome(server.get("Patient", name="a\u0000b"), 400, validate, "NUL")


def test_element_types_are_checked(server, validate):
    body = outcome(server.post("Patient", {"resourceType": "Patient", "name": [{"family": 1}]}), 400, validate, "FHIR string")
    assert body["issue"][0]["expression"] == ["Patient.name[0].family"]


def test_reimport_writes_nothing(server):
    again = run_ehr("import", "--db", server.db, str(FIXTURES))
    assert again.startswith("5 files, 0 resources written"), again
