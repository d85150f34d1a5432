"""Seed corpora of the fuzz targets that read protocol messages and documents (run by seed.sh).

Usage: python3 seeds.py DICOM_FIXTURE_DIR. Each seed is a small valid (or nearly valid) input of
its target, so mutations start from the shapes the parsers accept.
"""

import json
import math
import os
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import wave


def write(target, name, data):
    os.makedirs(f"corpus/{target}", exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(f"corpus/{target}/{name}", "wb") as out:
        out.write(data)


def fhir_json():
    patient = {
        "resourceType": "Patient",
        "id": "p1",
        "identifier": [{"system": "urn:oid:1.2.250.1.213.1.4.8", "value": "1234567890123"}],
        "name": [{"family": "Durand", "given": ["Marie", "Anne"]}],
        "gender": "female",
        "birthDate": "1961-04-02",
        "address": [{"line": ["3 rue des Lilas"], "city": "Lyon", "postalCode": "69003"}],
    }
    observation = {
        "resourceType": "Observation",
        "id": "o1",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": "2024-05-01T10:30:00+02:00",
        "valueQuantity": {"value": 72, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"},
    }
    condition = {
        "resourceType": "Condition",
        "id": "c1",
        "subject": {"reference": "Patient/p1"},
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "38341003"}], "text": "Hypertension"},
        "onsetDateTime": "2019",
    }
    document = {
        "resourceType": "DocumentReference",
        "status": "current",
        "subject": {"reference": "Patient/p1"},
        "content": [{"attachment": {"contentType": "text/plain", "data": "Q29uc3VsdGF0aW9u"}}],
    }
    transaction = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"fullUrl": "urn:uuid:1", "resource": dict(patient, id=None) | {"id": "p2"},
             "request": {"method": "PUT", "url": "Patient/p2", "ifMatch": 'W/"1"'}},
            {"resource": observation | {"subject": {"reference": "urn:uuid:1"}},
             "request": {"method": "POST", "url": "Observation", "ifNoneExist": "identifier=x|1"}},
            {"request": {"method": "DELETE", "url": "Condition?subject=Patient/p1"}},
            {"request": {"method": "GET", "url": "Patient?name=durand&_count=5"}},
        ],
    }
    for name, resource in [("patient", patient), ("observation", observation),
                           ("condition", condition), ("document", document),
                           ("transaction", transaction)]:
        write("fhir_json", name, json.dumps(resource, indent=1))


def fhir_search():
    queries = [
        (0, "name=durand&birthdate=ge1960-01-01&gender=female&_count=10&_sort=-birthdate"),
        (0, "identifier=urn:oid:1.2.250.1.213.1.4.8|1234567890123&_include=Patient:general-practitioner"),
        (1, "subject=Patient/p1&code=http://loinc.org|8867-4&date=lt2024-06&value-quantity=gt60|http://unitsofmeasure.org|/min"),
        (1, "subject:Patient.name=durand&_total=accurate&_revinclude=Provenance:target"),
        (2, "patient=p1&date=ge2024-01-01T00:00:00Z&status=finished,in-progress"),
        (3, "code:text=hypertension&onset-date=sa2018&_summary=count"),
        (0, "_has:Observation:subject:code=8867-4&name:exact=Durand&name:contains=ura"),
        (5, "patient=p1&type=http://loinc.org|11488-4&_lastUpdated=gt2024-01-01&_elements=id"),
    ]
    for i, (pick, query) in enumerate(queries):
        write("fhir_search", f"query-{i}", bytes([pick]) + query.encode())


def dicomweb_multipart(dicom_dir):
    dicom = open(os.path.join(dicom_dir, "ExplVR_BigEnd.dcm"), "rb").read()[:2048]
    for i, boundary in enumerate(["XyZ", "MIME_boundary-0123456789"]):
        header = f'multipart/related; type="application/dicom"; boundary="{boundary}"'
        body = (f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n").encode() + dicom
        body += (f"\r\n--{boundary}\r\nContent-Type: application/dicom\r\n\r\n").encode() + dicom[:300]
        body += f"\r\n--{boundary}--\r\n".encode()
        write("dicomweb_multipart", f"stow-{i}", header.encode() + b"\n" + body)


def audio():
    def wav(name, rate, channels, width, frames):
        path = os.path.join(tempfile.gettempdir(), name)
        with wave.open(path, "wb") as w:
            w.setnchannels(channels)
            w.setsampwidth(width)
            w.setframerate(rate)
            scale = (1 << (8 * width - 1)) - 1
            data = bytearray()
            for i in range(frames):
                v = int(scale * 0.5 * math.sin(2 * math.pi * 440 * i / rate))
                for _ in range(channels):
                    data += v.to_bytes(width, "little", signed=True) if width > 1 else bytes([(v + 128) & 255])
            w.writeframes(bytes(data))
        write("audio_decode", name, open(path, "rb").read())
        os.remove(path)

    wav("mono-16k.wav", 16000, 1, 2, 800)
    wav("stereo-44k.wav", 44100, 2, 2, 400)
    wav("mono-8k-8bit.wav", 8000, 1, 1, 400)
    # IEEE float WAV (format 3), which the wave module cannot write.
    samples = struct.pack("<100f", *[0.25 * math.sin(i / 3) for i in range(100)])
    fmt = struct.pack("<HHIIHH", 3, 1, 22050, 22050 * 4, 4, 32)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(samples)) + samples
    write("audio_decode", "float-22k.wav", b"RIFF" + struct.pack("<I", len(body)) + body)


def ledger():
    root = "rcv9OFhiXWn4ZKn/4SUZx1eBO7T6v9CSv7OtW9yzmPM="
    checkpoint = f"cohort.example/ledger\n42\n{root}\n"
    signature = "\u2014 cohort.example/ledger AAAAAQ" + "A" * 86 + "\n"
    note = checkpoint + "\n" + signature
    write("ledger_formats", "checkpoint", note)
    write("ledger_formats", "add-checkpoint", "old 40\n" + "A" * 43 + "=\n\n" + note)
    write("ledger_formats", "tiles", "tile/0/000\ntile/1/x001/234.p/5\ntile/entries/012\n")


def protocol():
    for pick in range(6):
        write("protocol_messages", f"empty-{pick}", bytes([pick]))
    # A SecureSubmission: plan_id "p", round 3 (fields 1 and 2).
    write("protocol_messages", "secure-submission", bytes([0, 0x0A, 1, ord("p"), 0x10, 3]))


def cstore(dicom_dir):
    """Records the bytes storescu sends to dcmtk's storescp for one small file."""
    fixture = os.path.join(dicom_dir, "ExplVR_BigEnd.dcm")
    if not (shutil_which("storescu") and shutil_which("storescp")):
        print("cstore_receiver seeds skipped: no dcmtk")
        return
    out = tempfile.mkdtemp()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        scp_port = s.getsockname()[1]
    scp = subprocess.Popen(["storescp", "-od", out, "-aet", "COHORT", str(scp_port)])
    proxy = socket.socket()
    proxy.bind(("127.0.0.1", 0))
    proxy.listen(1)
    proxy_port = proxy.getsockname()[1]
    recorded = bytearray()

    def relay():
        client, _ = proxy.accept()
        for _ in range(50):
            try:
                server = socket.create_connection(("127.0.0.1", scp_port))
                break
            except OSError:
                time.sleep(0.1)
        back = threading.Thread(target=pipe, args=(server, client, None))
        back.start()
        pipe(client, server, recorded)
        back.join()

    def pipe(src, dst, record):
        while True:
            chunk = src.recv(65536)
            if not chunk:
                try:
                    dst.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                return
            if record is not None:
                record.extend(chunk)
            dst.sendall(chunk)

    thread = threading.Thread(target=relay)
    thread.start()
    time.sleep(0.5)
    subprocess.run(["storescu", "-aec", "COHORT", "127.0.0.1", str(proxy_port), fixture], check=True)
    thread.join(timeout=10)
    scp.terminate()
    write("cstore_receiver", "storescu-session", bytes(recorded))
    # The association request alone, and the session cut inside its data set.
    pdu_len = struct.unpack(">I", recorded[2:6])[0]
    write("cstore_receiver", "associate-rq", bytes(recorded[: 6 + pdu_len]))
    write("cstore_receiver", "cut-session", bytes(recorded[: len(recorded) // 2]))


def shutil_which(name):
    import shutil
    return shutil.which(name)


if __name__ == "__main__":
    dicom_dir = sys.argv[1]
    fhir_json()
    fhir_search()
    dicomweb_multipart(dicom_dir)
    audio()
    ledger()
    protocol()
    cstore(dicom_dir)
    print("protocol and document seeds written")
