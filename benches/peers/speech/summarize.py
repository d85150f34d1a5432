"""Summary of compare.sh's results: per set, WER and term recall of each side (first run; both
sides are deterministic), the median real-time factor of each side over the repeats and the
median of the per-repeat ratios cohort / faster-whisper.

usage: python summarize.py OUT_DIR
"""
import glob, json, os, re, statistics, sys


def main():
    out = sys.argv[1]
    runs = {}
    for path in glob.glob(os.path.join(out, "*.json")):
        m = re.match(r"(.+)\.(cohort|fw)\.(\d+)\.json$", os.path.basename(path))
        if m:
            runs.setdefault(m[1], {}).setdefault(m[2], {})[int(m[3])] = json.load(open(path))
    print("| set | side | clips | words | WER | term recall | RTF median (runs) | ratio cohort/fw (median) |")
    print("|---|---|---|---|---|---|---|---|")
    for name in sorted(runs):
        sides = runs[name]
        ratios = [sides["cohort"][r]["rtf"] / sides["fw"][r]["rtf"] for r in sides.get("cohort", {}) if r in sides.get("fw", {})]
        for side in ("fw", "cohort"):
            if side not in sides:
                continue
            reps = sides[side]
            first = reps[min(reps)]
            rtfs = [d["rtf"] for d in reps.values()]
            recall = first["term_recall"]
            recall = "-" if recall is None or recall != recall else f"{first['terms_found']}/{first['terms_in_references']}"
            ratio = f"{statistics.median(ratios):.2f} ({', '.join(f'{x:.2f}' for x in ratios)})" if side == "cohort" and ratios else ""
            print(f"| {name} | {'faster-whisper' if side == 'fw' else 'cohort'} | {first['clips']} | {first['words']} | {first['wer']:.3f} | {recall} | {statistics.median(rtfs):.3f} ({len(rtfs)}) | {ratio} |")


if __name__ == "__main__":
    main()
