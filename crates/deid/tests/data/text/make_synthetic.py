"""Synthetic clinical notes with planted PHI, English (nursing progress notes,
discharge summaries) and French (letters, reports), for the categories and
formats the public samples lack: dates in every shape (numeric, written out,
partial), ages over 89, phones, faxes, pagers, e-mail, URLs, IP addresses,
street addresses, postcodes, cities, hospitals named with a place, IPP / NDA /
NIR (valid key), SSN / MRN / account numbers, names of patients, relatives and
staff (titles, initials, `LAST, First`, names made up from syllables that no
name list holds).

usage: python3 make_synthetic.py [N_PER_SPLIT]      (writes next to this file)

  synthetic-nursing-en-tune.jsonl   synthetic-nursing-en-report.jsonl
  synthetic-letters-fr-tune.jsonl   synthetic-letters-fr-report.jsonl

The sentence templates are dealt into two disjoint pools: the `tune` files are
written from one, the `report` files from the other (and from other seeds),
so rules tuned on `tune` are measured on sentences they were not tuned on.
Gold labels are this crate's own (`NAME`, `DATE`, ...); titles (`Dr.`, `Mme`)
and keywords (`MRN`, `IPP`) are outside the spans. Written for this project
(Apache-2.0); the surrogate name lists are `../../../data/text/surrogate-*`.
"""
import gzip
import json
import os
import random
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
LISTS = os.path.join(HERE, "../../../data/text")
N = int(sys.argv[1]) if len(sys.argv) > 1 else 60


def listed(file):
    return [w.capitalize() for w in gzip.open(os.path.join(LISTS, file)).read().decode().split()]


FIRST = {"en": listed("surrogate-first-en.txt.gz"), "fr": listed("surrogate-first-fr.txt.gz")}
LAST = {"en": listed("surrogate-last-en.txt.gz"), "fr": listed("surrogate-last-fr.txt.gz")}
SYLLABLES = ["ka", "ro", "vel", "tin", "mar", "zo", "lek", "bra", "dun", "sor", "pel", "qui", "ran", "tov",
             "ash", "mir", "gal", "ben", "cor", "dal", "fen", "hol", "jav", "nus", "ost", "rik", "sel", "tam"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]
MOIS = ["janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre",
        "novembre", "décembre"]
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
JOURS = ["lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche"]
US_CITIES = ["Boston", "Springfield", "Worcester", "Lowell", "Quincy", "Brockton", "Framingham", "Providence",
             "Hartford", "Albany", "Concord", "Portland", "Burlington", "Nashua", "Manchester", "Salem",
             "Plymouth", "Newton", "Waltham", "Lynn", "Chelsea", "Revere", "Medford", "Somerville"]
STATES = ["MA", "NH", "RI", "CT", "ME", "VT", "NY"]
STATE_NAMES = ["Massachusetts", "New Hampshire", "Rhode Island", "Connecticut", "Maine", "Vermont", "Florida"]
VILLES = ["Lyon", "Rennes", "Montpellier", "Brest", "Limoges", "Besançon", "Angers", "Poitiers", "Créteil",
          "Bobigny", "Clamart", "Nanterre", "Colombes", "Argenteuil", "Saint-Denis", "Villejuif", "Meaux"]
STREETS = ["Street", "St.", "Avenue", "Ave", "Road", "Rd", "Lane", "Drive", "Court", "Way", "Place", "Boulevard"]
RUES = ["rue", "avenue", "boulevard", "allée", "impasse", "chemin", "place", "quai", "route"]


class Gen:
    def __init__(self, lang, rng):
        self.lang, self.r = lang, rng

    def made_up(self):
        n = self.r.choice([2, 2, 3])
        return "".join(self.r.choice(SYLLABLES) for _ in range(n)).capitalize()

    def first(self):
        return self.made_up() if self.r.random() < 0.25 else self.r.choice(FIRST[self.lang])

    def last(self):
        return self.made_up() if self.r.random() < 0.3 else self.r.choice(LAST[self.lang])

    def day_month_year(self):
        return self.r.randint(1, 28), self.r.randint(1, 12), self.r.randint(1925, 2024)

    def date_en(self):
        d, m, y = self.day_month_year()
        ordinal = f"{d}{'th' if 10 <= d % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(d % 10, 'th')}"
        return self.r.choice([
            f"{m}/{d}/{y}", f"{m:02d}/{d:02d}/{y % 100:02d}", f"{m}/{d}", f"{m}-{d}-{y}",
            f"{MONTHS[m - 1]} {d}, {y}", f"{MONTHS[m - 1][:3]} {d}", f"{MONTHS[m - 1]} {ordinal}",
            f"{d} {MONTHS[m - 1]} {y}", f"{y}-{m:02d}-{d:02d}", f"{MONTHS[m - 1]} {y}", f"{m}/{y}",
            f"the {ordinal} of {MONTHS[m - 1]}", f"{MONTHS[m - 1][:3]}. {d}", f"{m}.{d}.{y % 100:02d}",
        ])

    def date_fr(self):
        d, m, y = self.day_month_year()
        jour = self.r.choice(JOURS)
        return self.r.choice([
            f"{d:02d}/{m:02d}/{y}", f"{d}/{m}/{y % 100:02d}", f"{d:02d}/{m:02d}", f"{d:02d}.{m:02d}.{y}",
            f"{d} {MOIS[m - 1]} {y}", f"{'1er' if d == 1 else d} {MOIS[m - 1]}", f"{MOIS[m - 1]} {y}",
            f"{jour} {d} {MOIS[m - 1]}", f"{d}-{m}-{y}", f"{y}-{m:02d}-{d:02d}", f"{m:02d}/{y}",
            f"{d} {MOIS[m - 1][:4]}. {y}", f"{jour} {d:02d}/{m:02d}",
        ])

    def date(self):
        return self.date_en() if self.lang == "en" else self.date_fr()

    def year(self):
        return str(self.r.randint(1950, 2024))

    def age(self):
        return str(self.r.randint(90, 104))

    def phone(self):
        r = self.r
        if self.lang == "fr":
            p = [f"{r.randint(0, 99):02d}" for _ in range(4)]
            return r.choice([f"0{r.randint(1, 7)} {' '.join(p)}", f"0{r.randint(1, 7)}.{'.'.join(p)}",
                             f"0{r.randint(1, 7)}{''.join(p)}", f"+33 {r.randint(1, 7)} {' '.join(p)}",
                             f"0{r.randint(1, 7)}-{'-'.join(p)}"])
        a, b, c = r.randint(201, 989), r.randint(200, 999), r.randint(1000, 9999)
        return r.choice([f"({a}) {b}-{c}", f"{a}-{b}-{c}", f"{a}.{b}.{c}", f"{b}-{c}", f"1-{a}-{b}-{c}",
                         f"({a}){b}-{c}"])

    def pager(self):
        return str(self.r.randint(10000, 99999))

    def email(self, first, last):
        dom = self.r.choice(["gmail.com", "yahoo.com", "aphp.fr", "chu-exemple.fr", "partners.org", "orange.fr"])
        return f"{first.lower()}{self.r.choice(['.', '_', ''])}{last.lower()}@{dom}"

    def url(self):
        host = self.made_up().lower()
        return self.r.choice([f"www.{host}.org", f"https://{host}-sante.fr/patients", f"http://www.{host}.com/portal"])

    def ip(self):
        return ".".join(str(self.r.randint(1, 254)) for _ in range(4))

    def ssn(self):
        return f"{self.r.randint(100, 899)}-{self.r.randint(10, 99)}-{self.r.randint(1000, 9999)}"

    def mrn(self):
        return self.r.choice([str(self.r.randint(1000000, 99999999)), f"{self.r.randint(100, 999)}-{self.r.randint(10, 99)}-{self.r.randint(10, 99)}"])

    def account(self):
        return str(self.r.randint(10000000, 9999999999))

    def ipp(self):
        return str(self.r.randint(8000000000, 8099999999))

    def nda(self):
        return str(self.r.randint(100000000, 999999999))

    def nir(self):
        r = self.r
        body = f"{r.choice('12')}{r.randint(30, 99):02d}{r.randint(1, 12):02d}{r.randint(1, 95):02d}{r.randint(1, 999):03d}{r.randint(1, 999):03d}"
        key = 97 - int(body) % 97
        return r.choice([f"{body[0]} {body[1:3]} {body[3:5]} {body[5:7]} {body[7:10]} {body[10:13]} {key:02d}",
                         f"{body}{key:02d}", f"{body} {key:02d}"])

    def street(self):
        r = self.r
        if self.lang == "fr":
            return f"{r.randint(1, 150)}{r.choice(['', '', ' bis'])} {r.choice(RUES)} {r.choice(['de la ', 'des ', 'du ', ''])}{self.last()}"
        return f"{r.randint(1, 9999)} {self.last()} {r.choice(STREETS)}{r.choice(['', '', ', Apt ' + str(r.randint(1, 40))])}"

    def city(self):
        return self.r.choice(US_CITIES if self.lang == "en" else VILLES)

    def zip(self):
        if self.lang == "fr":
            return f"{self.r.randint(1, 95):02d}{self.r.randint(0, 999):03d}"
        return f"0{self.r.randint(1000, 2799)}"

    def hospital(self):
        r, city, name = self.r, self.city(), self.last()
        if self.lang == "fr":
            return r.choice([f"CHU de {city}", f"Hôpital {name}", f"Clinique {name}", f"CH de {city}",
                             f"Centre Hospitalier de {city}", f"Hôpital Saint-{self.first()}"])
        return r.choice([f"{city} General Hospital", f"St. {self.first()}'s Hospital", f"{city} Medical Center",
                         f"{name} Rehab", f"{name} Nursing Home", f"{city} Hospital", f"{name} Memorial Hospital"])

    def initials(self):
        return "".join(self.r.choice("ABCDEFGHJKLMNPRSTVW") for _ in range(self.r.choice([2, 2, 3])))


# Templates: {slot} is planted PHI, {slot:LABEL} overrides the label; `~` starts a word of no PHI.
EN = [
    "Pt is a {age} y/o male admitted {date} from {hospital} with hypotension.",
    "{age} yo F transferred from {city} for further management of CHF exacerbation.",
    "Wife {first} in to visit this afternoon, updated by RN and Dr. {last}.",
    "Daughter ({first} {last}) called at 1400, her phone is {phone}.",
    "Dr. {last} aware of SBP 80s, 500cc NS bolus given with good effect.",
    "Discussed plan with Dr {first} {last} and {first} {last}, NP.",
    "Seen by renal fellow (Dr. {last}); plan for HD on {date}.",
    "Plan to return to {hospital} on {date} if stable.",
    "Pt lives in {city}, {state} with her husband {first}.",
    "Family meeting planned for {date} at 2pm with son {first} and HCP {first} {last}.",
    "R IJ CVL placed {date}, last BM {date}.",
    "PCP: Dr. {first} {last}, {hospital}, tel {phone}.",
    "Please page {first} at {pager:PHONE} with any questions.",
    "MRN: {mrn}   Unit No: {mrn:MRN}",
    "Call {hospital} at {phone} with report prior to transfer.",
    "E-mail {email} for the patient's records; portal at {url}.",
    "Address: {street}, {city}, {state} {zip}.",
    "SSN {ssn}. Account # {account}.",
    "Admitted in {month_year:DATE} for a COPD flare; prior MI in {year:DATE}.",
    "{last}, {first} is a {age} year old woman with a history of AFib.",
    "Pt's niece {first} {last} ({phone}) is the health care proxy.",
    "Ortho (Dr. {last}) saw pt this am, no new recs. {initials:NAME} RN",
    "Neuro: A&Ox3, MAE. Family in: wife and brother {first}. -- {first} {last}, RN",
    "Transferred to the MICU on {date} under Dr. {last}'s team; workstation IP {ip}.",
    "Pt reports falling at home in {city} on {weekday_date:DATE}.",
    "Fax discharge summary to {fax:PHONE} (attn. {first} {last}, case manager).",
    "S/p CABG at {hospital} in {year:DATE}. Echo on {date} showed EF 35%.",
    "Aged {age}, pt remains full code per discussion with her son {first} {last}.",
    "Received from ED at 0300. Cards attending {last} aware of trop 0.45.",
    "Pt's sister {first} lives in {state_name:CITY} and will fly in on {date}.",
    "Social work ({first} {last}, x{ext:PHONE}) following for placement at {hospital}.",
    "Dictated by: {first} {last}, M.D.  Signed electronically {date}.",
]
FR = [
    "{civ} {LAST} {first}, né(e) le {date}, IPP {ipp}, admis(e) le {date} pour dyspnée.",
    "Je vois en consultation {civ} {first} {LAST}, âgée de {age} ans, adressée par le Dr {first} {last}.",
    "NDA : {nda}. N° de sécurité sociale : {nir}.",
    "Domicile : {street}, {zip} {city}. Tél. : {phone}.",
    "Personne de confiance : sa fille {first} {last} ({phone}).",
    "Compte rendu dicté par le Pr {LAST}, validé le {date}. Courriel : {email}",
    "Patient de {age} ans, vit seul à {city}, suivi au {hospital} depuis {year:DATE}.",
    "Hospitalisation à l'{hospital} en {month_year:DATE} pour pneumopathie.",
    "Secrétariat : {phone} - Fax : {fax:PHONE}.",
    "Prochain rendez-vous le {date} avec le Dr {LAST} ({hospital}).",
    "Mme {last} est revue en HDJ le {date} ; son mari, M. {first} {last}, l'accompagne.",
    "Numéro de séjour {nda} - NIR {nir}",
    "Interne : {first} {LAST}. Chef de clinique : Dr {first} {LAST}.",
    "Courrier adressé au Dr {first} {last}, {street}, {zip} {city}.",
    "Vu ce jour {weekday_date:DATE} par l'équipe mobile de gériatrie (Dr {last}).",
    "Antécédents : appendicectomie en {year:DATE}, fracture du col en {month_year:DATE}.",
    "{LAST} {first} - IPP : {ipp} - NDA : {nda}",
    "Patiente de {age} ans transférée du {hospital} le {date}.",
    "Résultats disponibles sur {url} ; poste de soins {ip}.",
    "Contact : fils {first} ({phone}), belle-fille {first} {last}.",
    "Sortie prévue le {date} vers l'EHPAD {last} à {city}.",
    "Lettre tapée par {initials:NAME}/{initials:NAME} le {date}.",
    "Examen réalisé au {hospital}, service de radiologie (Pr {last}).",
    "N° SS : {nir} ; mutuelle n° {account:ACCOUNT}.",
    "Le {date}, Mme {LAST} signale une chute à domicile.",
    "Née {LAST}, épouse {last}, {first} est âgée de {age} ans.",
    "Appel de son médecin traitant, le Dr {first} {LAST}, au {phone}.",
    "Adresse : {street} {zip} {city} ; e-mail {email}",
]


def render(gen, template, note_names):
    """Fill a template: text and spans."""
    text, ents = "", []
    for part in re.split(r"(\{\w+(?::\w+)?\})", template):
        m = re.fullmatch(r"\{(\w+)(?::(\w+))?\}", part)
        if not m:
            text += part
            continue
        slot, label = m.group(1), m.group(2)
        value, default = fill(gen, slot, note_names)
        label = label or default
        if label:
            ents.append({"start": len(text), "end": len(text) + len(value), "label": label})
        text += value
    return text, ents


def fill(gen, slot, note_names):
    r = gen.r
    if slot == "first":
        v = gen.first()
        note_names.append(v)
        return v, "NAME"
    if slot in ("last", "LAST"):
        v = gen.last()
        note_names.append(v)
        return (v.upper() if slot == "LAST" else v), "NAME"
    if slot == "civ":
        return r.choice(["M.", "Mme", "Monsieur", "Madame", "Mr", "Mlle"]), None
    if slot == "date":
        return gen.date(), "DATE"
    if slot == "month_year":
        d, m, y = gen.day_month_year()
        return (f"{MONTHS[m - 1]} {y}" if gen.lang == "en" else f"{MOIS[m - 1]} {y}"), "DATE"
    if slot == "weekday_date":
        d, m, _ = gen.day_month_year()
        return (f"{r.choice(WEEKDAYS)} {m}/{d}" if gen.lang == "en" else f"{r.choice(JOURS)} {d} {MOIS[m - 1]}"), "DATE"
    if slot == "email":
        return gen.email(gen.first(), gen.last()), "EMAIL"
    if slot == "fax":
        return gen.phone(), "PHONE"
    if slot == "ext":
        return str(r.randint(1000, 99999)), "PHONE"
    if slot == "state":
        return r.choice(STATES), "CITY"
    if slot == "state_name":
        return r.choice(STATE_NAMES), "CITY"
    labels = {"age": "AGE", "phone": "PHONE", "pager": "PHONE", "url": "URL", "ip": "IP", "ssn": "SSN",
              "mrn": "MRN", "account": "ACCOUNT", "ipp": "IPP", "nda": "NDA", "nir": "NIR", "street": "ADDRESS",
              "city": "CITY", "zip": "ZIP", "hospital": "HOSPITAL", "year": "DATE", "initials": "NAME"}
    return getattr(gen, slot)(), labels[slot]


FILLER_EN = [
    "Resp: LS coarse bilat, sx for thick tan sputum. FiO2 weaned to 40%, ABG 7.38/42/88.",
    "CV: HR 80s NSR, no ectopy. BP 110-130/60s. K 3.6 repleted with 40 mEq KCl.",
    "GI: abd soft, +BS, tolerating TF at goal 60 cc/hr via NGT. Last BM today.",
    "GU: Foley draining clear yellow urine 30-60 cc/hr. Lasix 20 mg IV given.",
    "ID: Tmax 101.2, vanco and zosyn continue, cultures pending.",
    "Skin: coccyx stage II, duoderm intact. Turned q2h.",
    "Pain controlled on morphine 2 mg IV prn, pain 3/10 at rest.",
    "Plan: cont current management, wean vent as tolerated, f/u AM labs.",
    "Social: full code. Family updated at bedside.",
    "INR 2.4, coumadin held tonight per team. Hct stable at 29.",
]
FILLER_FR = [
    "Examen clinique : TA 130/80 mmHg, FC 78/min, SpO2 96 % en air ambiant.",
    "Biologie : Hb 11,2 g/dL, CRP 45 mg/L, créatinine 98 µmol/L.",
    "Traitement de sortie : bisoprolol 2,5 mg le matin, furosémide 40 mg/j.",
    "Pas de douleur thoracique, pas de signe d'insuffisance cardiaque droite.",
    "Scanner thoracique : condensation lobaire inférieure droite.",
    "Conclusion : pneumopathie communautaire d'évolution favorable sous amoxicilline.",
    "Kinésithérapie respiratoire 3 fois par semaine, à revoir dans 3 mois.",
    "ATCD : HTA, diabète de type 2, BPCO stade II selon GOLD.",
]


def notes(lang, templates, fillers, seed, n, split):
    rng = random.Random(seed)
    gen = Gen(lang, rng)
    rows = []
    for k in range(n):
        text, ents, names = "", [], []
        parts = rng.sample(templates, rng.randint(3, 6)) + rng.sample(fillers, rng.randint(1, 3))
        rng.shuffle(parts)
        for p in parts:
            if p in fillers:
                chunk, spans = p, []
            else:
                chunk, spans = render(gen, p, names)
            offset = len(text)
            ents += [{**e, "start": e["start"] + offset, "end": e["end"] + offset} for e in spans]
            text += chunk + rng.choice([" ", "\n", "\n", "  "])
        rows.append({"note_id": f"synthetic-{split}-{lang}-{k}", "note_text": text.rstrip(), "entities": ents})
    return rows


def write(name, rows):
    with open(os.path.join(HERE, name), "w") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    print(name, len(rows), "notes", sum(len(r["entities"]) for r in rows), "spans")


for lang, templates, fillers, kind in [("en", EN, FILLER_EN, "nursing"), ("fr", FR, FILLER_FR, "letters")]:
    tune, report = templates[0::2], templates[1::2]
    write(f"synthetic-{kind}-{lang}-tune.jsonl", notes(lang, tune, fillers, 101, N, "tune"))
    write(f"synthetic-{kind}-{lang}-report.jsonl", notes(lang, report, fillers, 202, N, "report"))
