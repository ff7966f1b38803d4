"""A benchmark's Markdown table from paired runs: each workload ran on both servers back to
back in every round, and the ratio is the median of those pairs' ratios (the machine drifts by
more over minutes than the pairs differ by), with a 95% interval for that median: the
distribution-free one from the sorted ratios (the sign test's order statistics), so a bar like
">= 1.0" is met when the interval's low end is, not when one run's median happens to be.
Fewer than 6 pairs give no 95% interval; their range is shown instead.

usage: paired-table.py RESULTS BASE BASE_LABEL [--server NAME=LABEL]... TEST=NAME...
RESULTS: lines "server,test,rate,round"; BASE: the reference server's name in them ("redis",
"memcached"), BASE_LABEL its column header. The compared servers are "shoal" ("Shoal") unless
--server names them: each gets its rate, ratio and range columns.
"""
import collections
import math
import statistics
import sys


def median_interval(ratios):
    """The widest-ranked order statistics (k-th lowest and highest, 1-based k) whose interval
    holds the median with at least 95% confidence: the largest k with P(Bin(n, 1/2) < k) <=
    2.5%. None under 6 pairs, where even the whole range is short of 95%."""
    n = len(ratios)
    k, below = 0, 0.0
    while True:
        below += math.comb(n, k) / 2**n
        if below > 0.025:
            break
        k += 1
    return (ratios[k - 1], ratios[n - k]) if k >= 1 else None

results, base, base_label, *rest = sys.argv[1:]
servers, tests = [], []
while rest:
    arg = rest.pop(0)
    if arg == "--server":
        servers.append(tuple(rest.pop(0).split("=", 1)))
    else:
        tests.append(arg)
servers = servers or [("shoal", "Shoal")]
runs = collections.defaultdict(dict)
for line in open(results):
    server, test, rate, rnd = line.strip().split(",")
    runs[(server, test)][rnd] = float(rate)
head = "".join(f" {label} | {label} / {base_label} | 95% interval |" for _, label in servers)
print(f"| workload | {base_label} |{head}")
print("|---|---:|" + "---:|---:|---:|" * len(servers))
for spec in tests:
    test, name = spec.split("=", 1)
    b = runs[(base, test)]
    row = f"| {name} | {statistics.median(b.values()):,.0f} |"
    for server, _ in servers:
        s = runs[(server, test)]
        ratios = sorted(s[r] / b[r] for r in b if r in s)
        interval = median_interval(ratios)
        spread = f"{interval[0]:.2f}-{interval[1]:.2f}" if interval else f"{ratios[0]:.2f}-{ratios[-1]:.2f} (range)"
        row += f" {statistics.median(s.values()):,.0f} | {statistics.median(ratios):.2f} | {spread} |"
    print(row)
