#!/usr/bin/env python3
"""Evaluate a Grafana dashboard's Prometheus queries against a real
Prometheus server and write the results for page.html (scripts/dashboard-shot.sh).

Every panel's targets are sent, unchanged except for Grafana's interval
variables, to Prometheus's HTTP API: query_range for time series, an instant
query at the end for stat and table panels. Standard library only.

usage: render.py DASHBOARD.json PROMETHEUS_URL START END STEP OUT/data.js
"""
import json
import re
import sys
import urllib.parse
import urllib.request


def query(base, path, params):
    url = base.rstrip("/") + path + "?" + urllib.parse.urlencode(params)
    with urllib.request.urlopen(url, timeout=30) as r:
        body = json.load(r)
    if body.get("status") != "success":
        raise SystemExit(f"prometheus: {path} {params}: {body}")
    return body["data"]


def legend(fmt, labels):
    if not fmt:
        name = labels.get("__name__", "")
        rest = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()) if k != "__name__")
        return f"{name}{{{rest}}}" if rest else name
    out = fmt
    for k, v in labels.items():
        out = out.replace("{{" + k + "}}", v).replace("{{ " + k + " }}", v)
    out = re.sub(r"\{\{\s*\w+\s*\}\}", "", out)  # a label the series lacks (empty) renders empty, as in Grafana
    return " ".join(out.split())


def num(v):
    try:
        f = float(v)
    except ValueError:
        return None
    return None if f != f or f in (float("inf"), float("-inf")) else f


def main():
    dash_path, prom, start, end, step, out = sys.argv[1:7]
    rate_interval = f"{max(4 * float(step), 8):g}s"  # Grafana: 4 scrape intervals at least
    dash = json.load(open(dash_path))
    panels = []
    for p in dash["panels"]:
        entry = {k: p.get(k) for k in ("type", "title", "gridPos", "fieldConfig", "description", "transformations")}
        entry["series"] = []
        for t in p["targets"]:
            expr = t["expr"].replace("$__rate_interval", rate_interval).replace("$__interval", f"{step}s")
            if p["type"] == "timeseries":
                data = query(prom, "/api/v1/query_range", {"query": expr, "start": start, "end": end, "step": step})
                for r in data["result"]:
                    entry["series"].append({"name": legend(t.get("legendFormat"), r["metric"]), "labels": r["metric"],
                                            "points": [[float(ts), num(v)] for ts, v in r["values"]]})
            else:
                data = query(prom, "/api/v1/query", {"query": expr, "time": end})
                for r in data["result"]:
                    entry["series"].append({"name": legend(t.get("legendFormat"), r["metric"]), "labels": r["metric"],
                                            "value": num(r["value"][1])})
            entry.setdefault("exprs", []).append(expr)
        panels.append(entry)
    meta = {"title": dash["title"], "start": float(start), "end": float(end), "step": float(step), "rate_interval": rate_interval}
    with open(out, "w") as f:
        f.write("window.DASH = " + json.dumps({"meta": meta, "panels": panels}) + ";\n")
    empty = [p["title"] for p in panels if not p["series"]]
    print(f"render: {len(panels)} panels from {prom}; without data: {empty or 'none'}")


if __name__ == "__main__":
    main()
