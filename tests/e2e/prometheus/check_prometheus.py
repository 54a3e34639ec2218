"""Asks a Prometheus what it knows about memscope agents, for tests/e2e/prometheus_test.sh.

Every check polls Prometheus' HTTP API (/api/v1/targets, /api/v1/query, /api/v1/alerts) until it
holds or its deadline passes, then exits 0, or 1 with one line saying what was missing and what
Prometheus had instead. Standard library only.

  check_prometheus.py URL targets  --deadline S NODE=HOST:PORT...
  check_prometheus.py URL series   --deadline S --rank-pid RANK=PID... NODE=UUID...
  check_prometheus.py URL alert    --deadline S NAME NODE [LABEL=VALUE...]
  check_prometheus.py URL no-alert NAME NODE LABEL_REGEX
  check_prometheus.py URL dashboard FILE.json
"""

import json
import re
import sys
import time
import urllib.parse
import urllib.request


def get(url, path, **params):
    query = urllib.parse.urlencode(params)
    with urllib.request.urlopen(f"{url}{path}{'?' + query if query else ''}", timeout=10) as reply:
        document = json.load(reply)
    if document.get("status") != "success":
        raise RuntimeError(f"{path} {params}: {document}")
    return document["data"]


def query(url, expr):
    return get(url, "/api/v1/query", query=expr)["result"]


def poll(deadline, attempt):
    """Calls attempt() until it returns None (success) or the deadline; returns the last complaint."""
    end = time.monotonic() + deadline
    while True:
        try:
            complaint = attempt()
        except (OSError, RuntimeError, ValueError) as error:
            complaint = f"Prometheus did not answer: {error}"
        if complaint is None or time.monotonic() > end:
            return complaint
        time.sleep(0.5)


def pairs(args):
    return dict(arg.split("=", 1) for arg in args)


def check_targets(url, deadline, expected):
    def attempt():
        active = get(url, "/api/v1/targets", state="active")["activeTargets"]
        seen = {t["labels"].get("node"): (t["labels"].get("instance"), t["health"], t["lastError"])
                for t in active if t["labels"].get("job") == "memscope"}
        for node, instance in expected.items():
            if seen.get(node, (None, None))[:2] != (instance, "up"):
                return f"target {node} at {instance} not up; targets: {seen}"
        return None
    return poll(deadline, attempt)


def check_series(url, deadline, rank_pids, uuids):
    nodes = sorted(uuids)

    def attempt():
        # Every agent's GPU, labelled with its index and UUID.
        gpu = query(url, 'memscope_gpu_memory_used_bytes{job="memscope"}')
        have = {(s["metric"].get("node"), s["metric"].get("gpu"), s["metric"].get("uuid")) for s in gpu}
        for node in nodes:
            if (node, "0", uuids[node]) not in have:
                return f"no memscope_gpu_memory_used_bytes{{node={node},gpu=0,uuid={uuids[node]}}}; have {sorted(have)}"
        # Every agent reports the ranked processes, each with all four kinds.
        processes = query(url, 'memscope_process_memory_bytes{job="memscope",rank!=""}')
        have = {(s["metric"].get("node"), s["metric"].get("rank"), s["metric"].get("pid"),
                 s["metric"].get("comm"), s["metric"].get("kind")) for s in processes}
        for node in nodes:
            for rank, pid in rank_pids.items():
                for kind in ("rss", "pss", "uss", "gpu"):
                    if (node, rank, pid, "sleep", kind) not in have:
                        return (f"no memscope_process_memory_bytes{{node={node},rank={rank},pid={pid},"
                                f"comm=sleep,kind={kind}}}; have {sorted(have)[:12]}")
        for s in processes:
            if float(s["value"][1]) <= 0 and s["metric"]["kind"] in ("rss", "pss", "uss"):
                return f"a ranked process has no host memory: {s}"
        # The forecast of every GPU, and of the host.
        risk = query(url, 'memscope_oom_risk_level{job="memscope"}')
        have = {(s["metric"].get("node"), s["metric"].get("resource")) for s in risk}
        for node in nodes:
            for resource in ("host", "gpu0"):
                if (node, resource) not in have:
                    return f"no memscope_oom_risk_level{{node={node},resource={resource}}}; have {sorted(have)}"
        return None
    return poll(deadline, attempt)


def alerts(url, name):
    return [a for a in get(url, "/api/v1/alerts")["alerts"] if a["labels"].get("alertname") == name]


def check_alert(url, deadline, name, node, labels):
    def attempt():
        found = alerts(url, name)
        for alert in found:
            if alert["state"] == "firing" and alert["labels"].get("node") == node and all(
                    alert["labels"].get(k) == v for k, v in labels.items()):
                if not alert["annotations"].get("summary") or not alert["annotations"].get("description"):
                    return f"{name} fires without summary/description: {alert}"
                print(f"{name} firing: {alert['labels']} since {alert['activeAt']}: {alert['annotations']['summary']}")
                return None
        return f"{name} is not firing for node {node} {labels}; its alerts: {[(a['state'], a['labels']) for a in found]}"
    return poll(deadline, attempt)


def check_no_alert(url, name, node, label_regex):
    key, pattern = label_regex.split("=", 1)
    for alert in alerts(url, name):
        if alert["labels"].get("node") == node and re.fullmatch(pattern, alert["labels"].get(key, "")):
            return f"{name} is {alert['state']} for {node}, which does not grow: {alert['labels']}"
    return None


def check_dashboard(url, path):
    """Every query of the Grafana dashboard parses and runs; the core panels have data."""
    dashboard = json.load(open(path))
    must_have_data = {"Agents up", "OOM risk per node and resource", "Host memory",
                      "GPU memory per GPU", "Process memory per rank", "Rank imbalance (max / mean)"}
    substitutions = {"${gpu:regex}": ".*", "$job": "memscope", "$node": ".*", "$rank": ".*", "$gpu": ".*"}
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    for panel in panels:
        for target in panel["targets"]:
            expr = target["expr"]
            for variable, value in substitutions.items():
                expr = expr.replace(variable, value)
            if "$" in expr:
                return f"panel {panel['title']!r}: unknown variable left in {expr!r}"
            try:
                result = query(url, expr)
            except (OSError, RuntimeError, ValueError) as error:
                return f"panel {panel['title']!r}: {expr!r} fails: {error}"
            if panel["title"] in must_have_data and not result:
                return f"panel {panel['title']!r}: {expr!r} has no data"
    missing = must_have_data - {p["title"] for p in panels}
    if missing:
        return f"the dashboard lost panels {sorted(missing)}"
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    if not {"datasource", "job", "node", "rank", "gpu"} <= variables:
        return f"template variables are {sorted(variables)}"
    print(f"dashboard: {len(panels)} panels, every query runs")
    return None


def main(argv):
    url, command, rest = argv[1].rstrip("/"), argv[2], argv[3:]
    deadline = 0.0
    if rest[:1] == ["--deadline"]:
        deadline, rest = float(rest[1]), rest[2:]
    if command == "targets":
        complaint = check_targets(url, deadline, pairs(rest))
    elif command == "series":
        rank_pids = {}
        while rest[:1] == ["--rank-pid"]:
            rank_pids.update(pairs([rest[1]]))
            rest = rest[2:]
        complaint = check_series(url, deadline, rank_pids, pairs(rest))
    elif command == "alert":
        complaint = check_alert(url, deadline, rest[0], rest[1], pairs(rest[2:]))
    elif command == "no-alert":
        complaint = check_no_alert(url, rest[0], rest[1], rest[2])
    elif command == "dashboard":
        complaint = check_dashboard(url, rest[0])
    else:
        complaint = f"unknown check {command!r}"
    if complaint:
        print(f"FAIL: {complaint}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
