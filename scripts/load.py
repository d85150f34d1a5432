"""Load on a node's servers, from other processes over loopback: the FHIR API under concurrent
clients (wrk: reads, searches, then writes), and the DICOM receiver under parallel associations
(dcmtk's storescu). Checks that nothing failed and no write was lost; prints throughput and
latency percentiles. Used by scripts/test.sh (short, debug build) and for the figures in
docs/RELIABILITY.md (release build, longer).

Usage: python3 scripts/load.py --bin target/release/cohort [--seconds 30] [--connections 16]
           [--associations 8] [--files-per-association 25] [--dicom FILE]
"""

import argparse
import json
import os
import pathlib
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "crates" / "ehr" / "fixtures" / "synthea"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(*args, **kwargs):
    done = subprocess.run([str(a) for a in args], capture_output=True, text=True, **kwargs)
    if done.returncode != 0:
        sys.exit(f"{' '.join(map(str, args))} failed: {done.stderr}")
    return done.stdout


def get(url, token):
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}", "Accept": "application/fhir+json"})
    with urllib.request.urlopen(request, timeout=60) as r:
        return json.load(r)


def wait_until_up(process, url, what):
    deadline = time.time() + 60
    while time.time() < deadline:
        if process.poll() is not None:
            sys.exit(f"{what} exited early")
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.1)
    sys.exit(f"{what} did not start")


WRK_SCRIPT = r"""
local paths = {PATHS}
local token = "{TOKEN}"
local body = {BODY}
local n = 0
request = function()
  n = n + 1
  local headers = {["Authorization"] = "Bearer " .. token, ["Accept"] = "application/fhir+json"}
  if body ~= "" then
    headers["Content-Type"] = "application/fhir+json"
    return wrk.format("POST", "/Observation", headers, body)
  end
  return wrk.format("GET", paths[(n % #paths) + 1], headers)
end
done = function(summary, latency, requests)
  io.write(string.format("RESULT requests=%d non2xx=%d errors=%d p50=%.3f p90=%.3f p99=%.3f max=%.3f seconds=%.3f\n",
    summary.requests, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000, summary.duration / 1e6))
end
"""


def wrk(base, token, seconds, connections, paths=None, body=""):
    lua = WRK_SCRIPT.replace("{PATHS}", "{" + ",".join(json.dumps(p) for p in (paths or ["/metadata"])) + "}")
    lua = lua.replace("{TOKEN}", token).replace("{BODY}", json.dumps(body))
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(lua)
    out = run("wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--timeout", "30s", "-s", f.name, base)
    os.unlink(f.name)
    line = next(l for l in out.splitlines() if l.startswith("RESULT "))
    result = {k: float(v) for k, v in (kv.split("=") for kv in line.split()[1:])}
    result["rate"] = result["requests"] / result["seconds"]
    return result


def fhir_load(bin_path, work, seconds, connections):
    db = f"sqlite:{work / 'ehr.db'}"
    run(bin_path, "ehr", "import", "--db", db, FIXTURES)
    token = run(bin_path, "ehr", "token", "create", "--db", db, "--name", "load", "--scope", "user/*.*").strip()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = open(work / "ehr.log", "w")
    server = subprocess.Popen([bin_path, "ehr", "serve", "--db", db, "--listen", f"127.0.0.1:{port}"], stdout=log, stderr=log)
    try:
        wait_until_up(server, f"{base}/metadata", "the FHIR server")
        patients = [e["resource"]["id"] for e in get(f"{base}/Patient?_count=50", token)["entry"]]
        paths = []
        for p in patients:
            paths += [f"/Patient/{p}", f"/Observation?subject=Patient/{p}&_count=20",
                      f"/Condition?patient={p}", f"/Encounter?subject=Patient/{p}&_sort=-date&_count=5"]
        reads = wrk(base, token, seconds, connections, paths=paths)
        marker = f"load-{os.getpid()}"
        observation = json.dumps({
            "resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": "urn:cohort:load", "code": marker}]},
            "subject": {"reference": f"Patient/{patients[0]}"},
            "valueQuantity": {"value": 72, "unit": "/min"},
        })
        writes = wrk(base, token, seconds, connections, body=observation)
        stored = get(f"{base}/Observation?code=urn:cohort:load|{marker}&_summary=count", token)["total"]
        acknowledged = writes["requests"] - writes["non2xx"]
    finally:
        server.terminate()
        server.wait(timeout=30)
    return reads, writes, stored, acknowledged


def dicom_load(bin_path, work, fixture, associations, per_association):
    if not shutil.which("dcmodify"):
        sys.exit("dcmtk (storescu, dcmodify) is needed")
    files = []
    for a in range(associations):
        folder = work / f"send-{a}"
        folder.mkdir()
        for i in range(per_association):
            path = folder / f"{i}.dcm"
            shutil.copy(fixture, path)
            files.append(path)
        # New study, series and instance UIDs for every copy: distinct instances.
        run("dcmodify", "-nb", "-gst", "-gse", "-gin", *sorted(folder.iterdir()))
    db = f"sqlite:{work / 'imaging-ehr.db'}"
    run(bin_path, "ehr", "token", "create", "--db", db, "--name", "load", "--scope", "user/*.*")
    dicom_port, http_port = free_port(), free_port()
    log = open(work / "imaging.log", "w")
    server = subprocess.Popen([bin_path, "imaging", "serve", "--dir", work / "images", "--db", db,
                               "--dicom-listen", f"127.0.0.1:{dicom_port}", "--http-listen", f"127.0.0.1:{http_port}"],
                              stdout=log, stderr=log)
    try:
        wait_until_up(server, f"http://127.0.0.1:{http_port}/dicomweb/studies", "the imaging server")
        start = time.time()
        senders = [subprocess.Popen(["storescu", "-aec", "COHORT", "127.0.0.1", str(dicom_port),
                                     *sorted((work / f"send-{a}").iterdir())],
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                   for a in range(associations)]
        failed = [s.communicate()[0] for s in senders if s.wait() != 0]
        elapsed = time.time() - start
        instances = list((work / "images").rglob("*.dcm"))
    finally:
        server.terminate()
        server.wait(timeout=30)
    size = os.path.getsize(fixture)
    return {"files": len(files), "failed_associations": len(failed), "failures": failed[:1],
            "stored": len(instances), "seconds": elapsed, "files_per_s": len(files) / elapsed,
            "mb_per_s": len(files) * size / elapsed / 1e6}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", default=str(ROOT / "target" / "debug" / "cohort"))
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--associations", type=int, default=8)
    parser.add_argument("--files-per-association", type=int, default=25)
    parser.add_argument("--dicom", default=None, help="DICOM file to send (default: a fixture)")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is needed (Debian: apt-get install wrk)")
    fixture = args.dicom or os.path.join(os.environ.get("COHORT_SHARED_DATA", ""), "dicom-us", "OBXXXX1A.dcm")
    with tempfile.TemporaryDirectory() as tmp:
        work = pathlib.Path(tmp)
        reads, writes, stored, acknowledged = fhir_load(args.bin, work, args.seconds, args.connections)
        dicom = dicom_load(args.bin, work, fixture, args.associations, args.files_per_association)
    print(f"FHIR reads and searches, {args.connections} connections, {args.seconds} s: "
          f"{reads['rate']:.0f} requests/s, p50 {reads['p50']:.1f} ms, p90 {reads['p90']:.1f} ms, "
          f"p99 {reads['p99']:.1f} ms, {reads['non2xx']:.0f} non-2xx, {reads['errors']:.0f} socket errors")
    print(f"FHIR creates, {args.connections} connections, {args.seconds} s: "
          f"{writes['rate']:.0f} requests/s, p50 {writes['p50']:.1f} ms, p99 {writes['p99']:.1f} ms, "
          f"{writes['non2xx']:.0f} non-2xx, {writes['errors']:.0f} socket errors; "
          f"{acknowledged:.0f} acknowledged, {stored} stored")
    print(f"DICOM C-STORE, {args.associations} parallel associations x {args.files_per_association} files "
          f"({os.path.getsize(fixture)} bytes each): {dicom['files_per_s']:.1f} files/s, "
          f"{dicom['mb_per_s']:.1f} MB/s, {dicom['failed_associations']} failed associations, "
          f"{dicom['stored']} of {dicom['files']} instances stored")
    problems = []
    if reads["non2xx"] or reads["errors"]:
        problems.append("reads failed")
    if writes["non2xx"] or writes["errors"]:
        problems.append("writes failed")
    # Requests still in flight when wrk stopped may be stored without being counted.
    if not acknowledged <= stored <= acknowledged + args.connections:
        problems.append(f"{acknowledged:.0f} writes acknowledged but {stored} stored")
    if dicom["failed_associations"] or dicom["stored"] != dicom["files"]:
        problems.append(f"DICOM: {dicom['failures']}")
    if problems:
        sys.exit("FAILED: " + "; ".join(problems))
    print("no failed request, no lost write")


if __name__ == "__main__":
    main()
