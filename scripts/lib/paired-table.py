"""A benchmark's Markdown table from paired runs: each workload ran on both servers back to
back in every round, and the ratio is the median of those pairs' ratios, with the lowest and
highest (the machine drifts by more over minutes than the pairs differ by).

usage: paired-table.py RESULTS BASE BASE_LABEL [--server NAME=LABEL]... TEST=NAME...
RESULTS: lines "server,test,rate,round"; BASE: the reference server's name in them ("redis",
"memcached"), BASE_LABEL its column header. The compared servers are "shoal" ("Shoal") unless
--server names them: each gets its rate, ratio and range columns.
"""
import collections
import statistics
import sys

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
head = "".join(f" {label} | {label} / {base_label} | pairs' range |" for _, label in servers)
print(f"| workload | {base_label} |{head}")
print("|---|---:|" + "---:|---:|---:|" * len(servers))
for spec in tests:
    test, name = spec.split("=", 1)
    b = runs[(base, test)]
    row = f"| {name} | {statistics.median(b.values()):,.0f} |"
    for server, _ in servers:
        s = runs[(server, test)]
        ratios = sorted(s[r] / b[r] for r in b if r in s)
        row += f" {statistics.median(s.values()):,.0f} | {statistics.median(ratios):.2f} | {ratios[0]:.2f}-{ratios[-1]:.2f} |"
    print(row)
