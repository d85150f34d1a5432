"""Read what text is left in DICOM pixels with Tesseract, and count the header's identifiers in it.

    python ocr_leaks.py ORIGINALS_DIR [TOOL=OUT_DIR ...]

For every original file, the identifying values of its header (patient name parts, IDs, birth
date, accession number, institution, physicians and operators, dates of the study in the forms
scanners print them) are the tokens looked for. A frame is read as Tesseract sees it at twice
its size, normal and inverted (light text on dark is what scanners burn in). A token counts as
visible in the original when OCR finds it in any frame read (first, middle, last), and as leaked
by a tool when OCR also finds it in that tool's output. A file a tool did not write (it failed)
counts as leaking everything visible: the file would have gone out uncleaned or not at all,
which the table says apart. Also counted: the letters and digits OCR reads at all (any text,
and what OCR makes of anatomy), and the share of pixels each tool changed. Prints a JSON summary
per tool and a Markdown table.
"""

import json
import re
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytesseract
from PIL import Image, ImageOps
from pydicom.pixels import apply_color_lut

NAME_FIELDS = ["PatientName", "ReferringPhysicianName", "OperatorsName", "PerformingPhysicianName"]
ID_FIELDS = ["PatientID", "OtherPatientIDs", "AccessionNumber", "StudyID", "InstitutionName"]
DATE_FIELDS = ["PatientBirthDate", "StudyDate", "SeriesDate", "AcquisitionDate", "ContentDate"]


def norm(text):
    return re.sub(r"[^A-Z0-9]", "", text.upper())


def tokens(ds):
    """Identifier tokens of a header, normalised (upper case, letters and digits only)."""
    found = set()
    for field in NAME_FIELDS + ID_FIELDS:
        element = ds.data_element(field) if field in ds else None
        values = [] if element is None or element.value is None else element.value
        for value in values if element is not None and element.VM > 1 else [values]:
            for part in re.split(r"[\^\s,]+", str(value)):
                if len(norm(part)) >= 3:
                    found.add(norm(part))
    for field in DATE_FIELDS:
        value = str(ds.get(field, ""))
        if re.fullmatch(r"\d{8}", value):
            y, m, d = value[:4], value[4:6], value[6:]
            # As scanners print dates: day or month first, two- or four-digit years.
            found.update({y + m + d, d + m + y, m + d + y, d + m + y[2:], m + d + y[2:]})
    return found


def frames(ds):
    """The first, middle and last frames as 8-bit greyscale images (pydicom gives YBR as RGB),
    at the stored bits' scale."""
    arr = ds.pixel_array
    count = int(ds.get("NumberOfFrames", 1) or 1)
    if count == 1:
        arr = arr[np.newaxis]
    photometric = ds.PhotometricInterpretation
    picks = sorted({0, count // 2, count - 1})
    for i in picks:
        frame = arr[i]
        if photometric == "PALETTE COLOR":
            frame = apply_color_lut(frame, ds)
        if photometric == "PALETTE COLOR" and frame.dtype == np.uint16:
            frame = frame / 257.0  # 16-bit LUT entries
        elif frame.dtype != np.uint8:
            frame = frame / float(1 << max(int(ds.BitsStored) - 8, 0))
        frame = frame.astype(np.float64)
        if frame.ndim == 3:
            frame = frame @ np.array([0.299, 0.587, 0.114])
        if photometric == "MONOCHROME1":
            frame = 255.0 - frame
        # As displayed, not stretched: a tool blanking to black must not move the other pixels.
        yield Image.fromarray(frame.clip(0, 255).astype(np.uint8), mode="L")


def read(path):
    """The frames read and the text OCR finds in them."""
    ds = pydicom.dcmread(path)
    images = list(frames(ds))
    text = []
    for image in images:
        big = image.resize((image.width * 2, image.height * 2), Image.Resampling.LANCZOS)
        for seen in (big, ImageOps.invert(big)):
            text.append(pytesseract.image_to_string(seen, config="--psm 11"))
    return images, norm(" ".join(text))


def changed(before, after):
    """Fraction of the pixels read whose grey level moved by more than 8 (of 255)."""
    moved = total = 0
    for a, b in zip(before, after):
        if a.size != b.size:
            return 1.0
        diff = np.abs(np.asarray(a, dtype=np.int16) - np.asarray(b, dtype=np.int16))
        moved += int((diff > 8).sum())
        total += diff.size
    return moved / total if total else 0.0


def main():
    originals = Path(sys.argv[1])
    tools = dict(arg.split("=", 1) for arg in sys.argv[2:])
    rows = {
        tool: {"visible": 0, "leaked": 0, "files_failed": 0, "files_leaking": 0, "changed": [],
            "characters_left": 0}
        for tool in tools
    }
    characters = 0
    for path in sorted(originals.glob("*.dcm")):
        wanted = tokens(pydicom.dcmread(path, stop_before_pixels=True))
        images, seen = read(path)
        characters += len(seen)
        visible = sorted(t for t in wanted if t in seen)
        line = {"file": path.name, "visible": visible}
        for tool, out_dir in tools.items():
            out = Path(out_dir) / path.name
            if out.exists():
                try:
                    out_images, left = read(out)
                    leaked = [t for t in visible if t in left]
                    moved = changed(images, out_images)
                    rows[tool]["changed"].append(moved)
                    line[f"{tool} changed"] = round(moved, 3)
                    rows[tool]["characters_left"] += len(left)
                except Exception as e:  # an output OCR cannot read counts as failed
                    print(f"{tool} {path.name}: {e}", file=sys.stderr)
                    leaked, out = visible, None
            else:
                leaked = visible
            if out is None or not out.exists():
                rows[tool]["characters_left"] += len(seen)
                rows[tool]["files_failed"] += 1
            rows[tool]["visible"] += len(visible)
            rows[tool]["leaked"] += len(leaked)
            rows[tool]["files_leaking"] += bool(leaked)
            line[tool] = leaked
        print(json.dumps(line), flush=True)
    print(json.dumps({tool: {k: v for k, v in r.items() if k != "changed"} for tool, r in rows.items()}))
    print(f"OCR reads {characters} letters and digits in the originals")
    print(
        "| tool | identifiers OCR reads in the originals | still read after cleaning "
        "| files leaking | files failed | pixels changed (median, max over files) "
        "| letters and digits OCR still reads |"
    )
    print("|---|---|---|---|---|---|---|")
    for tool, r in rows.items():
        moved = r["changed"] or [0.0]
        print(
            f"| {tool} | {r['visible']} | {r['leaked']} | {r['files_leaking']} | {r['files_failed']} "
            f"| {np.median(moved):.1%}, {max(moved):.1%} | {r['characters_left']} |"
        )


if __name__ == "__main__":
    main()
