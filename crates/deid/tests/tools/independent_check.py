#!/usr/bin/env python3
"""Second, independent reader of de-identified DICOM files (pydicom, dcmtk, tesseract).

usage: independent_check.py ANNEX_E_CSV MANIFEST_CSV INPUT_DIR OUTPUT_DIR

For every file of OUTPUT_DIR (de-identified with the `training` options), against its
original in INPUT_DIR:
  * dcmdump (dcmtk) and pydicom open it, and pydicom decodes every frame;
  * no attribute of PS3.15 Table E.1-1 keeps its original value, except those the
    claimed options retain (Retain Device Identity, Retain Patient Characteristics),
    times of day (Modified Dates shifts whole days) and descriptors that Clean
    Descriptors found nothing to mask in;
  * no original instance UID appears anywhere in the file;
  * tesseract run over every output frame reads none of the identifiers (words of
    the patient's name, ID, birth date, institution, and the burned-in text listed in
    the manifest) that it reads in the input.
Prints one line per file and exits non-zero on any failure.
"""
import csv
import os
import re
import subprocess
import sys
import tempfile

import numpy as np
import pydicom
from PIL import Image
from pydicom.pixels import apply_color_lut

RETAINING = ("retain_device_identity", "retain_patient_characteristics")
CLASS_UIDS = {0x00080016, 0x00081150, 0x0008010C, 0x00081190}


def table_rules(path):
    exact, keep = {}, set()
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            m = re.fullmatch(r"\(([0-9A-F]{4}),([0-9A-F]{4})\)", row["tag"])
            if not m:
                continue
            tag = int(m.group(1) + m.group(2), 16)
            exact[tag] = row
            retained = any(row[c] == "K" for c in RETAINING)
            clean_text = row["clean_descriptors"] == "C"
            time_of_day = row["retain_longitudinal_modified_dates"] == "C" and row["vr"] == "TM"
            if retained or clean_text or time_of_day:
                keep.add(tag)
    return exact, keep


def walk(ds):
    for elem in ds:
        if elem.VR == "SQ":
            for item in elem.value:
                yield from walk(item)
        else:
            yield elem


def text(elem):
    value = elem.value
    if isinstance(value, (bytes, bytearray)):
        return ""
    if isinstance(value, (list, pydicom.multival.MultiValue)):
        return "\\".join(str(v) for v in value)
    return str(value).strip()


def frames(ds):
    arr = ds.pixel_array
    count = int(getattr(ds, "NumberOfFrames", 1) or 1)
    arr = arr if count > 1 else arr[np.newaxis, ...]
    pi = ds.PhotometricInterpretation
    for frame in arr:
        if pi == "PALETTE COLOR":
            frame = apply_color_lut(frame, ds)
        elif pi.startswith("YBR") and not ds.file_meta.TransferSyntaxUID.is_compressed:
            frame = pydicom.pixels.convert_color_space(frame, pi, "RGB")
        frame = frame.astype(np.float64)
        peak = frame.max() or 1.0
        frame = (frame / peak * 255).astype(np.uint8)
        if pi == "MONOCHROME1":
            frame = 255 - frame
        yield frame


def ocr(frame, workdir):
    image = Image.fromarray(frame)
    image = image.resize((image.width * 2, image.height * 2), Image.BICUBIC)
    path = os.path.join(workdir, "frame.png")
    image.save(path)
    out = subprocess.run(["tesseract", path, "-", "--psm", "11"], capture_output=True, text=True)
    return re.sub(r"[^A-Z0-9]+", " ", out.stdout.upper())


def identifiers(ds, manifest_row):
    values = []
    for kw in ("PatientName", "PatientID", "OtherPatientIDs", "InstitutionName",
               "InstitutionAddress", "ReferringPhysicianName", "AccessionNumber"):
        if kw in ds:
            values.append(text(ds[kw]))
    for kw in ("PatientBirthDate", "StudyDate"):
        d = text(ds[kw]) if kw in ds else ""
        if re.fullmatch(r"\d{8}", d):
            values += [d, f"{d[4:6]}/{d[6:8]}/{d[:4]}", f"{d[4:6]}/{d[6:8]}/{d[2:4]}"]
    values.append(manifest_row.get("burned_in_text_seen", ""))
    words = set()
    for v in values:
        for w in re.split(r"[^A-Z0-9]+", v.upper()):
            if len(w) >= 3 and w not in {"AND", "THE", "DATE", "TIME", "NAME", "DOB", "MRN", "TRUNCATED",
                                          "PATIENTID", "PATIENT", "INSTITUTION", "ONLY", "ACQUISITION",
                                          "PARAMETERS", "IDENTIFYING", "TEXT", "SEEN", "FLAGGED", "HEADER"}:
                words.add(w)
    return words


def found(words, ocr_text):
    tokens = set(ocr_text.split())
    return {w for w in words if w in tokens or (len(w) >= 5 and w in ocr_text.replace(" ", ""))}


def main():
    annex, manifest, src, dst = sys.argv[1:5]
    exact, keep = table_rules(annex)
    with open(manifest, newline="") as f:
        rows = {r["file"]: r for r in csv.DictReader(f)}
    failures = 0
    with tempfile.TemporaryDirectory() as workdir:
        for name in sorted(os.listdir(dst)):
            if not name.endswith(".dcm"):
                continue
            problems = []
            out_path, in_path = os.path.join(dst, name), os.path.join(src, name)
            dump = subprocess.run(["dcmdump", "-q", out_path], capture_output=True, text=True)
            if dump.returncode != 0 or "E:" in dump.stderr:
                problems.append(f"dcmdump: {dump.stderr.strip()[:200]}")
            before, after = pydicom.dcmread(in_path), pydicom.dcmread(out_path)
            after_values = {(int(e.tag), text(e)) for e in walk(after)}
            for elem in walk(before):
                tag, value = int(elem.tag), text(elem)
                if not value or tag in keep:
                    continue
                if tag in exact or elem.tag.is_private:
                    if (tag, value) in after_values:
                        problems.append(f"{elem.keyword or elem.tag} kept {value!r}")
            raw = open(out_path, "rb").read()
            for elem in list(walk(before)) + list(before.file_meta):
                if elem.VR == "UI" and int(elem.tag) not in CLASS_UIDS and int(elem.tag) != 0x00020010:
                    for uid in text(elem).split("\\"):
                        if uid and not uid.startswith("1.2.840.10008.") and uid.encode() in raw:
                            problems.append(f"original UID {uid} survives")
            words = identifiers(before, rows.get(name, {}))
            seen_in = set()
            for frame in frames(before):
                seen_in |= found(words, ocr(frame, workdir))
                break  # text overlays are static: the first input frame shows them
            seen_out, count = set(), 0
            for frame in frames(after):
                seen_out |= found(words, ocr(frame, workdir))
                count += 1
            leaked = seen_out & (seen_in | words)
            if leaked:
                problems.append(f"OCR reads identifiers {sorted(leaked)} in the output")
            status = "FAIL" if problems else "ok"
            failures += bool(problems)
            print(f"{status} {name}: {count} frames, OCR input {sorted(seen_in)}, output {sorted(seen_out)}"
                  + "".join(f"\n    {p}" for p in problems), flush=True)
    total = len([n for n in os.listdir(dst) if n.endswith(".dcm")])
    print(f"independent check: {total - failures} passed, {failures} failed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
