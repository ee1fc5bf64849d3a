"""``creatorpass status``: one screen on a running appliance.

Each service's health (and the indexer's sync), the gateway's own dependency checks (database,
inference, indexer, signer, treasury, billing), the burner: outbox depth, batches per lane and today's
burns, from the public ``GET /v1/burns``. Endpoints come from ``var/run/up.json`` (written by ``make up``)
or from flags, so it works against a compose deployment too. Exit 0 when everything answers healthy.
"""

from __future__ import annotations

import datetime as dt
import json
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["StatusReport", "collect", "render"]

TIMEOUT_S = 5.0


@dataclass
class StatusReport:
    services: dict[str, dict[str, Any]] = field(default_factory=dict)
    gateway_checks: dict[str, Any] = field(default_factory=dict)
    burns: dict[str, Any] = field(default_factory=dict)

    @property
    def healthy(self) -> bool:
        return all(s.get("ok") for s in self.services.values())


def _get(url: str) -> tuple[int | None, Any]:
    req = urllib.request.Request(url, headers={"Accept": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT_S) as resp:
            raw = resp.read(1 << 20)
            status = int(resp.status)
    except urllib.error.HTTPError as exc:
        raw, status = exc.read(1 << 20), exc.code
    except OSError as exc:
        return None, str(getattr(exc, "reason", exc))
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, raw.decode(errors="replace")[:200]


def endpoints_from_home(home: Path) -> dict[str, str]:
    """Health URLs of a ``make up`` stack (``var/run/up.json``); empty when it is not running."""
    try:
        data = json.loads((home / "run" / "up.json").read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.get("health", {}).items()}


def collect(endpoints: dict[str, str]) -> StatusReport:
    report = StatusReport()
    for name, url in endpoints.items():
        status, body = _get(url)
        ok = status == 200
        detail = body.get("status", "") if isinstance(body, dict) else (body or "")
        if name == "indexer" and isinstance(body, dict):
            detail = f"{body.get('status')} (lag {body.get('lag_slots')} slots)"
            ok = status == 200
        report.services[name] = {"ok": ok, "http": status, "detail": str(detail)[:200]}
        if name == "gateway" and isinstance(body, dict):
            report.gateway_checks = body.get("checks", {})
    gateway = endpoints.get("gateway", "")
    if gateway:
        base = gateway.rsplit("/health", 1)[0]
        status, body = _get(f"{base}/v1/burns?limit=100")
        if status == 200 and isinstance(body, dict):
            report.burns = _summarise_burns(body)
    return report


def _summarise_burns(body: dict[str, Any]) -> dict[str, Any]:
    today = dt.datetime.now(dt.UTC).date().isoformat()
    batches = body.get("batches", [])
    lanes: dict[str, Counter[str]] = {}
    burned_today = 0
    for b in batches:
        lanes.setdefault(str(b.get("lane")), Counter())[str(b.get("state"))] += 1
        if str(b.get("created_at", "")).startswith(today) and b.get("state") in ("confirmed", "final"):
            burned_today += int(b.get("count") or 0)
    return {"totals": body.get("totals", {}), "lanes": {k: dict(v) for k, v in sorted(lanes.items())},
            "burned_today": burned_today, "batches_listed": len(batches)}


def render(report: StatusReport) -> str:
    lines = ["services:"]
    for name, s in report.services.items():
        mark = "ok" if s["ok"] else "DOWN" if s["http"] is None else f"HTTP {s['http']}"
        lines.append(f"  {name:<15} {mark:<8} {s['detail']}")
    if report.gateway_checks:
        lines.append("gateway dependencies:")
        for name, check in report.gateway_checks.items():
            state = "ok" if check.get("ok") and not check.get("degraded") else (
                "degraded" if check.get("ok") else "FAIL")
            lines.append(f"  {name:<15} {state:<8} {check.get('detail', '')}")
    if report.burns:
        t = report.burns["totals"]
        lines.append("burns:")
        lines.append(f"  credits spent {t.get('credits_spent', 0)}, tokens burned {t.get('tokens_burned', 0)} "
                     f"(final {t.get('tokens_final', 0)}), in flight {t.get('tokens_in_flight', 0)}, "
                     f"outbox {t.get('pending', 0)}; burned today {report.burns['burned_today']}")
        for lane, states in report.burns["lanes"].items():
            lines.append(f"  lane {lane}: " + ", ".join(f"{n} {s}" for s, n in sorted(states.items())))
    return "\n".join(lines)
