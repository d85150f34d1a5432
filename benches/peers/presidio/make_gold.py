"""Build the gold sets of the text de-identification benchmark (JSON lines:
note_id, note_text, entities [start, end, label], optional context).

usage: python3 make_gold.py SHARED_DATA_DIR PHILTER_LITE_DIR OUT_DIR [--synthea N] [--codiesp N] [--synthetic N]

  eds-fr.jsonl        EDS-Pseudo public sample (train + dev), French, 13 labels; also eds-fr-train/-dev.jsonl
  letters-fr.jsonl    French letters of crates/deid/tests/data/text/make_synthetic.py (report split)
  nursing-en.jsonl    English nursing notes of make_synthetic.py (report split)
  synthetic-fr.jsonl  French notes with planted IPP, NDA, NIR, addresses, phones, names, dates
  synthetic-en.jsonl  the same in English (MRN, SSN, account numbers, US addresses)
  synthea-en.jsonl    Synthea notes (base64 in DocumentReference); gold = the Patient's names and the dates
  i2b2-en.jsonl       the five i2b2-style notes shipped with philter-lite (BSD-3), their PHI tags
  codiesp-en.jsonl    CodiEsp clinical cases (English), no PHI: a precision check
Synthea and synthetic lines carry the patient facts as "context".
"""
import base64, gzip, json, os, random, re, sys, xml.etree.ElementTree as ET

shared, philter, out = sys.argv[1:4]
opts = dict(zip(sys.argv[4::2], sys.argv[5::2]))
N_SYNTHEA = int(opts.get("--synthea", 200))
N_CODIESP = int(opts.get("--codiesp", 100))
N_SYNTH = int(opts.get("--synthetic", 100))
os.makedirs(out, exist_ok=True)
LISTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../../crates/deid/data/text")


def write(name, rows):
    with open(os.path.join(out, name), "w") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    print(name, len(rows), "notes", sum(len(r["entities"]) for r in rows), "spans")


# EDS-Pseudo sample: train (the rules are tuned on it) and dev (reported apart)
rows = []
for part, name in [("public_small_train_data.jsonl", "eds-fr-train.jsonl"), ("public_small_dev_data.jsonl", "eds-fr-dev.jsonl")]:
    split = [json.loads(l) for l in open(os.path.join(shared, "text-deid/fr", part))]
    write(name, split)
    rows += split
write("eds-fr.jsonl", rows)

# make_synthetic.py's notes written from the sentences the rules were not tuned on
FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../../crates/deid/tests/data/text")
for name, fixture in [("letters-fr.jsonl", "synthetic-letters-fr-report.jsonl"), ("nursing-en.jsonl", "synthetic-nursing-en-report.jsonl")]:
    write(name, [json.loads(l) for l in open(os.path.join(FIXTURES, fixture))])

# Synthea notes
rows = []
bundles = sorted(
    os.path.join(root, f) for root, _, files in os.walk(os.path.join(shared, "fhir-synthea"))
    for f in files if f.startswith("patient-") and f.endswith(".json"))
ISO = re.compile(r"\b\d{4}-\d{2}-\d{2}(?:T[\d:.+\-]+)?\b")
for path in bundles:
    if len(rows) >= N_SYNTHEA:
        break
    entries = [e["resource"] for e in json.load(open(path))["entry"]]
    patient = next(r for r in entries if r["resourceType"] == "Patient")
    names = [w for n in patient.get("name", []) for w in n.get("given", []) + [n.get("family", "")] if w]
    words = sorted({p for n in names for p in re.split(r"[\s\-]+", n) if len(p) > 1}, key=len, reverse=True)
    context = {
        "patient_id": patient["id"],
        "names": [" ".join(n.get("given", []) + [n.get("family", "")]) for n in patient.get("name", [])],
        "birth_date": patient.get("birthDate"),
        "identifiers": [i["value"] for i in patient.get("identifier", []) if "type" in i],
        "addresses": [", ".join(a.get("line", []) + [a.get("city", ""), a.get("postalCode", "")]) for a in patient.get("address", [])],
        "telecom": [t["value"] for t in patient.get("telecom", [])],
    }
    for r in entries:
        if r["resourceType"] != "DocumentReference" or len(rows) >= N_SYNTHEA:
            continue
        for c in r.get("content", []):
            a = c.get("attachment", {})
            if a.get("contentType", "").startswith("text/plain") and "data" in a:
                text = base64.b64decode(a["data"]).decode("utf-8")
                ents = [{"start": m.start(), "end": m.end(), "label": "DATE"} for m in ISO.finditer(text)]
                for w in words:
                    for m in re.finditer(r"\b(?:" + re.escape(w) + "|" + re.escape(w.upper()) + r")\b", text):
                        ents.append({"start": m.start(), "end": m.end(), "label": "NAME"})
                rows.append({"note_id": r["id"], "note_text": text, "entities": sorted(ents, key=lambda e: e["start"]), "context": context})
write("synthea-en.jsonl", rows)

# philter-lite's i2b2 samples
rows = []
xml_dir = os.path.join(philter, "philter_lite/data/i2b2_xml")
for f in sorted(os.listdir(xml_dir)):
    root = ET.parse(os.path.join(xml_dir, f)).getroot()
    text = root.find("TEXT").text
    ents = [{"start": int(t.get("start")), "end": int(t.get("end")), "label": t.get("TYPE")} for t in root.find("TAGS")]
    rows.append({"note_id": f[:-4], "note_text": text, "entities": ents})
write("i2b2-en.jsonl", rows)

# CodiEsp
rows = []
cdir = os.path.join(shared, "codiesp/dev/text_files_en")
for f in sorted(os.listdir(cdir))[:N_CODIESP]:
    rows.append({"note_id": f[:-4], "note_text": open(os.path.join(cdir, f)).read(), "entities": []})
write("codiesp-en.jsonl", rows)


# Synthetic notes with planted PHI
def names(file):
    return [w.capitalize() for w in gzip.open(os.path.join(LISTS, file)).read().decode().split()]


def nir(rng):
    body = f"{rng.choice('12')}{rng.randint(30, 99):02d}{rng.randint(1, 12):02d}{rng.randint(1, 95):02d}{rng.randint(1, 999):03d}{rng.randint(1, 999):03d}"
    key = 97 - int(body) % 97
    return f"{body[0]} {body[1:3]} {body[3:5]} {body[5:7]} {body[7:10]} {body[10:13]} {key:02d}"


MOIS = ["janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre", "novembre", "décembre"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"]
RUES = ["rue", "avenue", "boulevard", "allée", "impasse", "chemin"]
STREETS = ["Street", "Avenue", "Road", "Lane", "Drive", "Court"]
VILLES = ["Lyon", "Rennes", "Montpellier", "Brest", "Limoges", "Besançon", "Angers", "Poitiers"]
CITIES = ["Springfield", "Boston", "Worcester", "Cambridge", "Quincy", "Lowell"]
FR_T = [
    "{civ} {NOM} {Prenom}, né(e) le {dn}, IPP {ipp}, NDA {nda}.\nAdmis(e) le {d1} pour douleur thoracique. Domicile : {adr}. Tél : {tel}.\nN° de sécurité sociale : {nir}. Personne de confiance : sa fille {Prenom2} {Nom}, {tel2}.\nCompte rendu dicté par le Dr {Nom3}, validé le {d2}. Courriel : {mail}",
    "Patient(e) : {Prenom} {NOM} ({ipp})\nConsultation du {d1} avec le Pr {Nom3}. Vit seul(e) au {adr}.\nContact : fils {Prenom2} ({tel}). Prochain RDV le {d2}. NIR {nir}, numéro de séjour {nda}.",
    "Mme {Nom} est revue en HDJ le {d1}. Elle signale que son mari, M. {Prenom2} {Nom}, l'accompagne. Adresse : {adr}.\nIPP : {ipp} - NDA : {nda} - Sécu : {nir}\nTéléphone portable {tel}. Lettre adressée au Dr {Prenom3} {Nom3} le {d2}.",
]
EN_T = [
    "{Title} {Prenom} {Nom} (MRN {mrn}) was seen on {d1}. DOB {dn}. Lives at {adr}.\nPhone {tel}. SSN {ssn}. Wife {Prenom2} called, {tel2}.\nDictated by Dr. {Nom3}, signed {d2}. Account {acct}. Email {mail}",
    "Patient: {NOM}, {Prenom}  MRN: {mrn}\nSeen in clinic {d1} by {Prenom3} {Nom3}, MD. Address {adr}. Follow up with Dr. {Nom3} on {d2}.\nDaughter {Prenom2} {Nom} ({tel}) is health care proxy.",
    "{Prenom} {Nom} is a 94 year old man admitted {d1}. Contact: son {Prenom2}, {tel}. Home: {adr}.\nMedical record number {mrn}; SSN {ssn}. Discharged {d2}; PCP Dr. {Nom3}.",
]


def synthetic(lang, rng):
    first = names("surrogate-first-fr.txt.gz" if lang == "fr" else "surrogate-first-en.txt.gz")
    last = names("surrogate-last-fr.txt.gz" if lang == "fr" else "surrogate-last-en.txt.gz")
    rows = []
    for k in range(N_SYNTH):
        nom, nom3 = rng.choice(last), rng.choice(last)
        d = lambda: (rng.randint(1, 28), rng.randint(1, 12), rng.randint(1930, 2024))
        (a, b, c), (e, f, g), (h, i, j) = d(), d(), d()
        if lang == "fr":
            v = dict(civ=rng.choice(["M.", "Mme", "Monsieur", "Madame"]), dn=f"{a:02d}/{b:02d}/{c}",
                     d1=f"{e} {MOIS[f-1]} {g}", d2=f"{h:02d}.{i:02d}.{j % 100:02d}",
                     ipp=str(rng.randint(8000000000, 8099999999)), nda=str(rng.randint(100000000, 999999999)),
                     nir=nir(rng), adr=f"{rng.randint(1, 150)} {rng.choice(RUES)} {rng.choice(last)}, {rng.randint(10, 95)}{rng.randint(0, 999):03d} {rng.choice(VILLES)}",
                     tel=f"0{rng.randint(1, 7)} {rng.randint(10, 99)} {rng.randint(10, 99)} {rng.randint(10, 99)} {rng.randint(10, 99)}",
                     tel2=f"+33 6 {rng.randint(10, 99)} {rng.randint(10, 99)} {rng.randint(10, 99)} {rng.randint(10, 99)}")
            tpl = rng.choice(FR_T)
        else:
            v = dict(Title=rng.choice(["Mr.", "Mrs.", "Ms."]), dn=f"{b}/{a}/{c}", d1=f"{MONTHS[f-1]} {e}, {g}",
                     d2=f"{i:02d}/{h:02d}/{j % 100:02d}", mrn=str(rng.randint(1000000, 9999999)),
                     ssn=f"{rng.randint(100, 899)}-{rng.randint(10, 99)}-{rng.randint(1000, 9999)}",
                     acct=str(rng.randint(10000000, 99999999)),
                     adr=f"{rng.randint(1, 9999)} {rng.choice(last)} {rng.choice(STREETS)}, {rng.choice(CITIES)}, MA 0{rng.randint(1000, 2799)}",
                     tel=f"({rng.randint(200, 999)}) {rng.randint(200, 999)}-{rng.randint(1000, 9999)}",
                     tel2=f"{rng.randint(200, 999)}-{rng.randint(200, 999)}-{rng.randint(1000, 9999)}")
            tpl = rng.choice(EN_T)
        prenom, prenom2, prenom3 = rng.choice(first), rng.choice(first), rng.choice(first)
        v.update(Nom=nom, NOM=nom.upper(), Prenom=prenom, Prenom2=prenom2, Prenom3=prenom3, Nom3=nom3,
                 mail=f"{prenom.lower()}.{nom.lower()}@{rng.choice(['gmail.com', 'orange.fr', 'chu-exemple.fr'])}")
        labels = dict(civ=None, Title=None, dn="DATE", d1="DATE", d2="DATE", ipp="IPP", nda="NDA", nir="SECU", adr="ADRESSE",
                      tel="TEL", tel2="TEL", mrn="MRN", ssn="SSN", acct="ACCOUNT", Nom="NOM", NOM="NOM", Prenom="PRENOM",
                      Prenom2="PRENOM", Prenom3="PRENOM", Nom3="NOM", mail="MAIL")
        text, ents = "", []
        for part in re.split(r"(\{\w+\})", tpl):
            m = re.fullmatch(r"\{(\w+)\}", part)
            if not m:
                text += part
                continue
            value = v[m.group(1)]
            if labels.get(m.group(1)):
                ents.append({"start": len(text), "end": len(text) + len(value), "label": labels[m.group(1)]})
            text += value
        context = {"patient_id": f"synthetic-{lang}-{k}", "names": [f"{prenom} {nom}"], "identifiers": [v.get("ipp") or v.get("mrn")]}
        rows.append({"note_id": f"synthetic-{lang}-{k}", "note_text": text, "entities": ents, "context": context})
    return rows


write("synthetic-fr.jsonl", synthetic("fr", random.Random(12)))
write("synthetic-en.jsonl", synthetic("en", random.Random(13)))
