"""TF-IDF + one-vs-rest logistic regression (scikit-learn): the CodiEsp baseline beside
`cohort billing`. Trains on one CodiEsp split, ranks every code of each system for every case of
another, and writes the predictions in `cohort billing code`'s JSON form (scored by
`cohort billing eval` and /work/shared/eval/codiesp_map.py).

usage: billing_baseline.py TRAIN_DIR TEST_DIR OUT.json [es|en]
"""
import collections, json, pathlib, sys, time

from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier
from sklearn.preprocessing import MultiLabelBinarizer

train_dir, test_dir, out = map(pathlib.Path, sys.argv[1:4])
texts_dir = "text_files_en" if len(sys.argv) > 4 and sys.argv[4] == "en" else "text_files"


def cases(split):
    files = sorted((split / texts_dir).glob("*.txt"))
    return [f.stem for f in files], [f.read_text(encoding="utf-8") for f in files]


def gold(split, letter):
    codes = collections.defaultdict(list)
    for tsv in split.glob(f"*{letter}.tsv"):
        for line in tsv.read_text(encoding="utf-8").splitlines():
            if line.strip():
                case, code = line.split("\t")[:2]
                codes[case].append(code.upper())
    return codes


train_ids, train_texts = cases(train_dir)
test_ids, test_texts = cases(test_dir)
vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1)
x_train = vectorizer.fit_transform(train_texts)
x_test = vectorizer.transform(test_texts)
predictions = {case: [] for case in test_ids}
for letter, system in [("D", "diagnosis"), ("P", "procedure")]:
    labels = gold(train_dir, letter)
    binarizer = MultiLabelBinarizer()
    y = binarizer.fit_transform([labels.get(case, []) for case in train_ids])
    clock = time.time()
    model = OneVsRestClassifier(LogisticRegression(C=10.0, solver="liblinear"), n_jobs=1).fit(x_train, y)
    fit = time.time() - clock
    scores = model.predict_proba(x_test)
    for case, row in zip(test_ids, scores):
        ranked = sorted(zip(binarizer.classes_, row), key=lambda p: -p[1])[:100]
        predictions[case] += [{"code": c, "system": system, "score": float(s)} for c, s in ranked]
    print(f"{system}: {y.shape[1]} codes, fitted in {fit:.1f} s", file=sys.stderr)
out.write_text(json.dumps(predictions))
