"""Gold English sentences from presidio-evaluator's templates (MIT): names of people, cities and
streets in everyday sentences, most without a title or role before them. Templates with other
placeholders (cards, IBANs, organisations...) are skipped. Names: half from the surrogate lists,
half made up from syllables (no list holds them)."""
import gzip, json, random, re, sys

templates_path, first_gz, last_gz, out_path = sys.argv[1:5]
rng = random.Random(7)
first = gzip.open(first_gz, "rt").read().split()
last = gzip.open(last_gz, "rt").read().split()
SYL = ["ka", "vel", "dor", "mi", "tra", "zon", "bel", "qui", "ros", "ten", "ul", "vash", "ne", "gor", "li"]
def made_up():
    return "".join(rng.choice(SYL) for _ in range(rng.randint(2, 3))).capitalize()
def given():
    return rng.choice(first).capitalize() if rng.random() < 0.5 else made_up()
def family():
    return rng.choice(last).capitalize() if rng.random() < 0.5 else made_up()
CITIES = ["Springfield", "Riverton", "Lakewood", "Fairview", "Georgetown", "Ashland", "Milford"]
STREETS = ["Maple Avenue", "Oak Street", "Hillcrest Road", "Cedar Lane", "Park Boulevard"]
FILL = {
    "first_name": ("NAME", given), "first_name_male": ("NAME", given),
    "first_name_female": ("NAME", given), "first_name_nonbinary": ("NAME", given),
    "last_name": ("NAME", family), "last_name_male": ("NAME", family),
    "last_name_female": ("NAME", family),
    "name": ("NAME", lambda: f"{given()} {family()}"), "name_male": ("NAME", lambda: f"{given()} {family()}"),
    "name_female": ("NAME", lambda: f"{given()} {family()}"), "person": ("NAME", lambda: f"{given()} {family()}"),
    "prefix": (None, lambda: rng.choice(["Mr.", "Ms.", "Dr."])),
    "prefix_male": (None, lambda: "Mr."), "prefix_female": (None, lambda: "Mrs."),
    "city": ("CITY", lambda: rng.choice(CITIES)),
    "street_name": ("ADDRESS", lambda: rng.choice(STREETS)),
    "building_number": ("ADDRESS", lambda: str(rng.randint(2, 980))),
    "country": (None, lambda: rng.choice(["France", "Canada", "Italy"])),
    "nationality": (None, lambda: rng.choice(["French", "Canadian"])),
    "job": (None, lambda: rng.choice(["nurse", "teacher", "driver"])),
    "year": ("DATE", lambda: str(rng.randint(1950, 2020))),
    "age": (None, lambda: str(rng.randint(20, 80))),
}
n = 0
with open(out_path, "w") as out:
    for line in open(templates_path, encoding="utf-8"):
        template = line.strip().replace("\\n", "\n")
        names = re.findall(r"{{(\w+)}}", template)
        if not names or any(p not in FILL for p in names) or "{" in re.sub(r"{{\w+}}", "", template):
            continue
        for copy in range(4):
            text, entities, pos = "", [], 0
            for m in re.finditer(r"{{(\w+)}}", template):
                text += template[pos:m.start()]
                label, make = FILL[m.group(1)]
                value = make()
                if label:
                    entities.append({"start": len(text), "end": len(text) + len(value), "label": label})
                text += value
                pos = m.end()
            text += template[pos:]
            out.write(json.dumps({"note_id": f"t{n}", "note_text": text, "entities": entities}) + "\n")
            n += 1
print(n, "sentences", file=sys.stderr)
