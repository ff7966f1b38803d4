"""A benchmark's Markdown table from paired runs: each workload ran on both servers back to
back in every round, and the ratio is the median of those pairs' ratios, with the lowest and
highest (the machine drifts by more over minutes than the pairs differ by).

usage: paired-table.py RESULTS BASE BASE_LABEL TEST=NAME...
RESULTS: lines "server,test,rate,round"; BASE: the reference server's name in them ("redis",
"memcached"), BASE_LABEL its column header; every other server's column is "Shoal".
"""
import collections
import statistics
import sys

results, base, base_label, *tests = sys.argv[1:]
runs = collections.defaultdict(dict)
for line in open(results):
    server, test, rate, rnd = line.strip().split(",")
    runs[(server, test)][rnd] = float(rate)
print(f"| workload | {base_label} | Shoal | Shoal / {base_label} | pairs' range |")
print("|---|---:|---:|---:|---:|")
for spec in tests:
    test, name = spec.split("=", 1)
    b, s = runs[(base, test)], runs[("shoal", test)]
    ratios = sorted(s[r] / b[r] for r in b if r in s)
    print(f"| {name} | {statistics.median(b.values()):,.0f} | {statistics.median(s.values()):,.0f} | "
          f"{statistics.median(ratios):.2f} | {ratios[0]:.2f}-{ratios[-1]:.2f} |")
