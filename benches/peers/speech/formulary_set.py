"""Manifests and formularies for the formulary benchmark of `cohort speech` (docs/BENCHMARKS.md,
"the hospital's formulary").

Writes to OUT_DIR:
- `displays.txt`: every medication display of the Synthea data (for `speech_bench names`);
- `formulary-fr.txt`: the French names of those drugs (`make_clinical_set.french_name`);
- `full.tsv`: the clips of the given sets with their whole record (`terms`), paths absolute;
- `held.tsv`: the same clips, each record without the drugs its reference names (a new
  prescription: the formulary is the only source of their spelling). A drug is a term found in
  the formulary of the clip's language (FORMULARY_EN, FORMULARY_FR);
- `other.tsv`: the same clips, each with the record of the next clip of its set and language
  (cyclic), less the terms its reference says: every term is unsaid, and `speech_bench eval`'s
  `unsaid_terms_written` counts the names written that were not said.

usage: python3 formulary_set.py SYNTHEA_DIR FORMULARY_EN OUT_DIR SET_DIR...
"""
import csv, glob, importlib.util, json, os, re, sys, unicodedata

spec = importlib.util.spec_from_file_location(
    "clinical_set", os.path.join(os.path.dirname(__file__), "make_clinical_set.py"))
clinical_set = importlib.util.module_from_spec(spec)
spec.loader.exec_module(clinical_set)


def fold(text):
    text = unicodedata.normalize("NFKD", text.lower())
    text = "".join(c for c in text if not unicodedata.combining(c))
    return " ".join(re.sub(r"[^a-z0-9 ]", " ", text).split())


def says(text, term):
    return f" {fold(term)} " in f" {fold(text)} "


def main(synthea, formulary_en, out, sets):
    os.makedirs(out, exist_ok=True)
    displays = set()
    for path in glob.glob(os.path.join(synthea, "hospital-*", "*.json")):
        for entry in json.load(open(path)).get("entry", []):
            resource = entry["resource"]
            if resource["resourceType"] == "MedicationRequest":
                concept = resource.get("medicationCodeableConcept") or {}
                display = concept.get("text") or (concept.get("coding") or [{}])[0].get("display")
                if display:
                    displays.add(display)
    open(os.path.join(out, "displays.txt"), "w").write("\n".join(sorted(displays)) + "\n")
    names = {clinical_set.drug_name(d) for d in displays} - {""}
    french = sorted({clinical_set.french_name(n) for n in names})
    open(os.path.join(out, "formulary-fr.txt"), "w").write("\n".join(french) + "\n")
    drugs = {"en": {fold(l) for l in open(formulary_en) if l.strip() and not l.startswith("#")},
             "fr": {fold(n) for n in french}}
    header = "file\tlang\treference\tterms\n"
    files = {name: open(os.path.join(out, f"{name}.tsv"), "w") for name in ("full", "held", "other")}
    for f in files.values():
        f.write(header)
    for folder in sets:
        manifest = os.path.join(folder, "manifest.tsv")
        rows = []
        for row in csv.DictReader(open(manifest), delimiter="\t", quoting=csv.QUOTE_NONE):
            row["terms"] = [t.strip() for t in row["terms"].split(";") if t.strip()]
            if row["terms"]:
                rows.append(row)
        for i, row in enumerate(rows):
            terms, reference = row["terms"], row["reference"]
            kept = [t for t in terms if not (says(reference, t) and fold(t) in drugs[row["lang"]])]
            same_lang = [r for r in rows[i + 1:] + rows[:i] if r["lang"] == row["lang"]]
            other = [t for t in (same_lang[0]["terms"] if same_lang else []) if not says(reference, t)]
            path = os.path.abspath(os.path.join(folder, row["file"]))
            for name, listed in (("full", terms), ("held", kept), ("other", other)):
                files[name].write(f"{path}\t{row['lang']}\t{reference}\t{'; '.join(listed)}\n")
    for f in files.values():
        f.close()


if __name__ == "__main__":
    if len(sys.argv) < 5:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:])
