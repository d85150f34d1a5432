#!/usr/bin/env bash
# Installs the Python side of the billing benchmark: scikit-learn for the TF-IDF + one-vs-rest
# logistic-regression baseline (billing_baseline.py). Usage: billing_setup.sh [VENV_DIR]
set -euo pipefail
venv="${1:-/tmp/billing-venv}"
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet "scikit-learn==1.9.1" numpy
echo "$venv/bin/python"
