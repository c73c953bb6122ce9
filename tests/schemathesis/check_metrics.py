"""GET /metrics read by a real Prometheus parser (prometheus_client, the reference Python
client): every family parses, counters are typed as counters and gauges as gauges, and the
process and build-info series a scraper expects are there.

Usage: check_metrics.py METRICS.txt   (tests/schemathesis/run.sh fetches the file with an admin token)
"""

import sys

from prometheus_client.parser import text_string_to_metric_families

text = open(sys.argv[1], encoding="utf-8").read()
# The parser strips a counter's _total suffix from the family's name, as the format defines.
families = {f.name: f for f in text_string_to_metric_families(text)}
want = {
    "safegrid_fixes": "counter",
    "safegrid_fix_commits": "counter",
    "safegrid_fix_commit_failures": "counter",
    "safegrid_tile_cache_requests": "counter",
    "safegrid_shed": "counter",
    "safegrid_http_requests": "counter",
    "safegrid_http_request_duration_seconds": "histogram",
    "safegrid_fix_queue": "gauge",
    "process_cpu_seconds": "counter",
    "process_resident_memory_bytes": "gauge",
    "process_start_time_seconds": "gauge",
    "process_open_fds": "gauge",
    "safegrid_build_info": "gauge",
}
failures = []
for name, kind in want.items():
    got = families.get(name)
    if got is None:
        failures.append(f"{name}: missing")
    elif got.type != kind:
        failures.append(f"{name}: typed {got.type}, expected {kind}")
for f in families.values():
    for s in f.samples:
        if f.type == "gauge" and s.name.endswith("_total"):
            failures.append(f"{s.name}: a _total series typed as a gauge")
build = families.get("safegrid_build_info")
if build is not None and [s.value for s in build.samples] != [1.0]:
    failures.append(f"safegrid_build_info: {[s.value for s in build.samples]}, expected one sample of 1")
if failures:
    print("metrics: " + "; ".join(failures))
    sys.exit(1)
print(f"metrics: {len(families)} families parse; counters, gauges and the histogram typed as Prometheus defines them")
