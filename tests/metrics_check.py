#!/usr/bin/python3
"""metrics_check.py: a /metrics scrape must parse with the Prometheus text
parser of python3-prometheus-client and hold every metric README.md's
"Metrics" table names.

Usage: metrics_check.py SCRAPE README
Exit 0, or 1 naming what is wrong.
"""
import re
import sys

from prometheus_client.parser import text_string_to_metric_families


def readme_metrics(path):
    text = open(path, encoding="utf-8").read()
    m = re.search(r"^### Metrics\n(.*?)(?=^#{2,3} )", text, re.M | re.S)
    if m is None:
        sys.exit("metrics_check: no \"### Metrics\" section in " + path)
    names = set()
    for line in m.group(1).splitlines():
        if not line.startswith("| `"):
            continue
        first = line.split("|")[1]
        for tok in re.findall(r"`([a-z_]+)(?:\{[^`]*\})?`", first):
            names.add(tok)
    return names


def main():
    scrape, readme = sys.argv[1], sys.argv[2]
    body = open(scrape, encoding="utf-8").read()
    seen = set()
    try:
        for fam in text_string_to_metric_families(body):
            seen.add(fam.name)
            for s in fam.samples:
                seen.add(s.name)
    except Exception as e:  # the parser raises ValueError and others
        sys.exit("metrics_check: the scrape does not parse: %s" % e)
    want = readme_metrics(readme)
    if len(want) < 10:
        sys.exit("metrics_check: only %d metrics found in the README" % len(want))
    missing = sorted(n for n in want if n not in seen)
    if missing:
        sys.exit("metrics_check: named in the README, absent from /metrics: "
                 + ", ".join(missing))
    print("metrics_check: %d metrics named in the README, all present; "
          "%d names parsed" % (len(want), len(seen)))


main()
