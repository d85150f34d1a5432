"""Rebuild the word lists of `deid::text` from their registry packages (see README.md).

usage: python3 build_lists.py PHILTER_LITE_DIR UNPII_DIR FAKER_DIR FR_UNMUNCH_TXT EN_DICT
  PHILTER_LITE_DIR: unpacked philter-lite 0.6.0 wheel; UNPII_DIR: unpacked unpii 0.3.1 wheel;
  FAKER_DIR: unpacked Faker wheel; FR_UNMUNCH_TXT: `unmunch fr.dic fr.aff` of Debian's
  hunspell-fr-comprehensive; EN_DICT: Debian wamerican's /usr/share/dict/american-english.
Writes *.txt.gz beside this script: one lower-case entry per line, sorted.
"""
import gzip, os, re, sys, tomllib

philter, unpii, faker, fr_unmunch, en_dict = sys.argv[1:6]
here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, faker)
from faker.providers.person.en_US import Provider as PersonEn  # noqa: E402
from faker.providers.person.fr_FR import Provider as PersonFr  # noqa: E402

WORD = re.compile(r"[a-zà-ÿœæ]+(?:-[a-zà-ÿœæ]+)*")


def write(name, items):
    items = sorted({i for i in items if i})
    with gzip.GzipFile(os.path.join(here, name), "wb", mtime=0, compresslevel=9) as f:
        f.write(("\n".join(items) + "\n").encode())
    print(name, len(items))


def lines(path):
    return [l.strip() for l in open(path, encoding="utf-8", errors="ignore")]


sets = tomllib.load(open(os.path.join(philter, "philter_lite/filters/set.toml"), "rb"))
fr_words = set()
for l in lines(fr_unmunch):
    # `mot/FLAGS`, `mot po:...` (morphology after a space), some forms with a trailing digit
    w = l.split()[0].split("/")[0].rstrip("0123456789") if l.split() else ""
    if WORD.fullmatch(w):
        fr_words.add(w)
en_words = {w.lower() for w in sets["nonames"] if WORD.fullmatch(w.lower())}
en_words |= {w for w in lines(en_dict) if WORD.fullmatch(w)}
first = {w.lower() for w in sets["firstnames"]}
first |= {w.lower() for w in lines(os.path.join(unpii, "lang/fr/names.txt"))}
first |= {w.lower() for w in list(PersonFr.first_names) + list(PersonEn.first_names)}
last = {w.lower() for w in sets["lastnames"]}
last |= {w.lower() for w in list(PersonFr.last_names) + list(PersonEn.last_names)}
write("words-fr.txt.gz", fr_words)
write("words-en.txt.gz", en_words)
write("first-names.txt.gz", (w for w in first if WORD.fullmatch(w) and len(w) > 1))
write("last-names.txt.gz", (w for w in last if WORD.fullmatch(w) and len(w) > 1))
write("cities-fr.txt.gz", (l.lower() for l in lines(os.path.join(unpii, "lang/fr/cities.txt")) if l))
write("surrogate-first-fr.txt.gz", (w.lower() for w in PersonFr.first_names))
write("surrogate-last-fr.txt.gz", (w.lower() for w in PersonFr.last_names))
write("surrogate-first-en.txt.gz", (w.lower() for w in PersonEn.first_names))
write("surrogate-last-en.txt.gz", (w.lower() for w in PersonEn.last_names))
