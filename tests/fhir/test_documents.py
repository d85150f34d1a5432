"""Clinical documents from the outside (fhirpy): a consultation note as a Composition, drafted
then replaced by its signed `final` version with a Provenance, and a dictation transcript as a
DocumentReference whose recording is a Binary. Every resource the server returns is checked
against the official FHIR R4 JSON Schema."""

import base64
import uuid

from fhirpy import SyncFHIRClient

LOINC = "http://loinc.org"


def b64(data):
    return base64.b64encode(data).decode("ascii")


def section(code, title, text):
    return {"title": title, "code": {"coding": [{"system": LOINC, "code": code}]},
            "text": {"status": "generated", "div": f'<div xmlns="http://www.w3.org/1999/xhtml"><p>{text}</p></div>'}}


def test_a_consultation_note_round_trips_and_is_signed(server, validate):
    client = SyncFHIRClient(server.base, authorization=f"Bearer {server.admin_token}")
    family = f"Note{uuid.uuid4().hex[:6]}"
    patient = client.resource("Patient", name=[{"family": family}])
    patient.save()
    doctor = client.resource("Practitioner", name=[{"family": "House"}])
    doctor.save()
    note = client.resource(
        "Composition", status="preliminary",
        type={"coding": [{"system": LOINC, "code": "11488-4", "display": "Consult note"}]},
        subject={"reference": f"Patient/{patient.id}"}, date="2024-03-12T10:30:00Z",
        author=[{"reference": f"Practitioner/{doctor.id}"}], title="Consultation note (draft)",
        section=[section("10164-2", "History of present illness", "Cough for three days."),
                 section("51847-2", "Assessment and plan", "Viral bronchitis; rest.")])
    note.save()
    read = client.reference("Composition", note.id).to_resource()
    validate(read.serialize())
    assert read.section[1].text.div == note.section[1].text.div
    drafts = client.resources("Composition").search(patient=patient.id, status="preliminary").fetch()
    assert [c.id for c in drafts] == [note.id]

    read.status = "final"
    read.title = "Consultation note"
    read.attester = [{"mode": "legal", "time": "2024-03-12T11:00:00Z", "party": {"reference": f"Practitioner/{doctor.id}"}}]
    read.save()
    assert read.meta.versionId == "2"
    provenance = client.resource(
        "Provenance", target=[{"reference": f"Composition/{note.id}/_history/2"}], recorded="2024-03-12T11:00:00Z",
        agent=[{"who": {"reference": f"Practitioner/{doctor.id}"}}])
    provenance.save()
    assert not client.resources("Composition").search(patient=patient.id, status="preliminary").fetch()
    signed = client.resources("Composition").search(patient=patient.id, status="final", section=f"{LOINC}|51847-2").fetch()
    assert [c.id for c in signed] == [note.id]
    history = validate(server.get(f"Composition/{note.id}/_history").json())
    assert [e["resource"]["status"] for e in history["entry"]] == ["final", "preliminary"]
    bundle = validate(server.get("Composition", _id=note.id, _revinclude="Provenance:target").json())
    assert [e["resource"]["resourceType"] for e in bundle["entry"]] == ["Composition", "Provenance"]
    for entry in bundle["entry"]:
        validate(entry["resource"])


def test_a_transcript_and_its_recording(server, validate):
    client = SyncFHIRClient(server.base, authorization=f"Bearer {server.admin_token}")
    patient = client.resource("Patient", name=[{"family": f"Dict{uuid.uuid4().hex[:6]}"}])
    patient.save()
    text = "Patiente revue ce jour : toux sèche, pas de fièvre."
    audio = bytes(range(256)) * 100
    urn = f"urn:uuid:{uuid.uuid4()}"
    response = server.post("", {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": {"resourceType": "DocumentReference", "status": "current", "docStatus": "preliminary",
                      "type": {"coding": [{"system": LOINC, "code": "34109-9", "display": "Note"}], "text": "Dictation transcript"},
                      "subject": {"reference": f"Patient/{patient.id}"},
                      "content": [{"attachment": {"contentType": "text/plain; charset=utf-8", "data": b64(text.encode()), "title": "Transcript"}},
                                  {"attachment": {"contentType": "audio/wav", "url": urn, "size": len(audio), "title": "Recording"}}]},
         "request": {"method": "POST", "url": "DocumentReference"}},
        {"fullUrl": urn, "resource": {"resourceType": "Binary", "contentType": "audio/wav",
                                      "securityContext": {"reference": f"Patient/{patient.id}"}, "data": b64(audio)},
         "request": {"method": "POST", "url": "Binary"}}]})
    assert response.status_code == 200, response.text
    docs = client.resources("DocumentReference").search(patient=patient.id).fetch()
    assert len(docs) == 1
    doc = validate(docs[0].serialize())
    assert base64.b64decode(doc["content"][0]["attachment"]["data"]).decode() == text
    link = doc["content"][1]["attachment"]["url"]
    assert link.startswith("Binary/")
    binary = validate(server.get(link).json())
    assert base64.b64decode(binary["data"]) == audio
    other = server.token(f"app-{uuid.uuid4().hex[:6]}", "patient/*.read", patient=patient.id)
    assert server.get(link, token=other).status_code == 200
