"""A FHIR server killed (SIGKILL) while clients post transaction Bundles, at seeded random
instants, then restarted on the same database: every Bundle is there whole or not at all, and
every Bundle the server acknowledged is there whole — in the stored resources and in the search
index alike. SQLite and PostgreSQL."""

import random
import threading
import time
import uuid

import requests

from conftest import run_ehr, start_server

KILLS = 12
CLIENTS = 3
OBSERVATIONS = 24
MARK = "urn:cohort:crash-test"


def bundle(marker):
    """A transaction of one new Patient and observations referring to it, all marked."""
    identifier = [{"system": MARK, "value": marker}]
    entries = [{
        "fullUrl": "urn:uuid:patient",
        "resource": {"resourceType": "Patient", "identifier": identifier, "name": [{"family": "Crash"}]},
        "request": {"method": "POST", "url": "Patient"},
    }]
    for i in range(OBSERVATIONS):
        entries.append({
            "resource": {
                "resourceType": "Observation", "status": "final", "identifier": identifier,
                "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
                "subject": {"reference": "urn:uuid:patient"},
                "valueQuantity": {"value": 60 + i, "unit": "/min"},
            },
            "request": {"method": "POST", "url": "Observation"},
        })
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def poster(base, token, stop, sent, acknowledged, prefix):
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/fhir+json"}
    n = 0
    while not stop.is_set():
        marker = f"{prefix}-{n}"
        n += 1
        sent.append(marker)
        try:
            r = requests.post(base, headers=headers, json=bundle(marker), timeout=30)
        except requests.RequestException:
            return  # the server died under this request
        if r.status_code == 200:
            acknowledged.append(marker)
        else:
            raise AssertionError(f"transaction refused while the server was up: {r.status_code} {r.text[:300]}")


def count(base, token, kind, marker):
    r = requests.get(f"{base}/{kind}", params={"identifier": f"{MARK}|{marker}", "_summary": "count"},
                     headers={"Authorization": f"Bearer {token}"}, timeout=60)
    assert r.status_code == 200, r.text
    return r.json()["total"]


def test_transactions_survive_kill_minus_nine_whole_or_not_at_all(empty_database, tmp_path):
    db = empty_database
    token = run_ehr("token", "create", "--db", db, "--name", "crash-test", "--scope", "user/*.*").strip()
    rng = random.Random(17)
    log = tmp_path / "serve.log"
    sent, acknowledged = [], []
    for kill in range(KILLS):
        process, base = start_server(db, log)
        stop = threading.Event()
        errors = []

        def run(prefix):
            try:
                poster(base, token, stop, sent, acknowledged, prefix)
            except AssertionError as e:
                errors.append(e)

        threads = [threading.Thread(target=run, args=(f"k{kill}c{c}-{uuid.uuid4().hex[:6]}",)) for c in range(CLIENTS)]
        for t in threads:
            t.start()
        time.sleep(rng.uniform(0.2, 1.5))
        process.kill()
        process.wait()
        stop.set()
        for t in threads:
            t.join()
        assert not errors, errors
    process, base = start_server(db, log)
    try:
        whole = 0
        for marker in sent:
            patients = count(base, token, "Patient", marker)
            observations = count(base, token, "Observation", marker)
            assert (patients, observations) in [(0, 0), (1, OBSERVATIONS)], \
                f"Bundle {marker} is partly stored: {patients} patient, {observations} observations"
            if marker in acknowledged:
                assert patients == 1, f"acknowledged Bundle {marker} is lost"
            whole += patients
        assert len(acknowledged) > KILLS, f"too few Bundles acknowledged to mean anything: {len(acknowledged)}"
        print(f"{len(sent)} Bundles sent, {len(acknowledged)} acknowledged, {whole} stored whole, "
              f"{len(sent) - whole} in flight at a kill and absent")
    finally:
        process.terminate()
        process.wait(timeout=30)
