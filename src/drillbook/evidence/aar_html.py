"""The after-action report as one self-contained HTML page (no scripts, no external assets)."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any

from jinja2 import Environment, Template, select_autoescape

__all__ = ["render_aar_html"]

_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>After-action report {{ aar.run_id }}</title>
<style>
body{font-family:system-ui,sans-serif;margin:2em;max-width:70em}
table{border-collapse:collapse;margin:.5em 0 1.5em}
td,th{border:1px solid #999;padding:.25em .5em;text-align:left;vertical-align:top}
.ok{color:#060}.bad{color:#a00}
</style></head><body>
<h1>After-action report — run {{ aar.run_id }}</h1>
<p>{{ aar.standard }}. Started {{ aar.started_at }}, ended {{ aar.ended_at }}.</p>
<h2>1. Scope</h2>
<p>Environment: <b>{{ aar.scope.environment }}</b>{% if aar.scope.dry_run %} (dry run){% endif %}.
{{ aar.scope.statement }}</p>
<table><tr><th>drill</th><th>description</th><th>fault</th><th>targets</th><th>runbook</th></tr>
{% for d in aar.scope.drills %}<tr><td>{{ d.id }}</td><td>{{ d.description }}</td>
<td>{{ d.fault.type }}: {{ d.fault.plan }}</td>
<td>{% for t in d.targets %}{{ t.name }} ({{ t.backend }}){% if not loop.last %}, {% endif %}{% endfor %}</td>
<td>{{ d.runbook }}</td></tr>{% endfor %}</table>
<h2>2. Objectives and success criteria</h2>
<table><tr><th>drill</th><th>severity</th><th>RTO target</th><th>RTA actual</th><th>RPO target</th>
<th>RPA actual</th><th>lost writes</th><th>criteria</th></tr>
{% for o in aar.objectives %}<tr><td>{{ o.drill }}</td><td>{{ o.severity }}</td>
<td>{{ fmt(o.rto.target_s) }}</td><td class="{{ cls(o.rto.met) }}">{{ fmt(o.rto.actual_s) }}</td>
<td>{{ fmt(o.rpo.target_s) }}</td><td class="{{ cls(o.rpo.met) }}">{{ fmt(o.rpo.actual_s) }}</td>
<td>{{ num(o.rpo.lost_writes) }}</td>
<td>{% for c in o.success_criteria %}<span class="{{ cls(c.ok) }}">{{ c.name }}: {{ c.detail }}</span><br>{% endfor %}</td>
</tr>{% endfor %}</table>
<h2>3. Participants and roles</h2>
<table><tr><th>name</th><th>role</th></tr>
{% for p in aar.participants %}<tr><td>{{ p.name }}</td><td>{{ p.role }}</td></tr>{% endfor %}</table>
<h2>4. Timeline</h2>
{% for t in aar.timeline %}<h3>{{ t.drill }}</h3>
<table>{% for k in times %}<tr><th>{{ k }}</th><td>{{ t[k] if t[k] else "— (not recorded)" }}</td></tr>{% endfor %}</table>
<table><tr><th>offset s</th><th>kind</th><th>detail</th></tr>
{% for e in t.events %}<tr><td>{{ num(e.offset_s) }}</td><td>{{ e.kind }}{% if e.phase %} {{ e.phase }}{% endif %}</td><td>{{ e.detail }}</td></tr>{% endfor %}</table>
{% endfor %}
<h2>5. Data-integrity checks</h2>
<table><tr><th>drill</th><th>check</th><th>result</th><th>detail</th></tr>
{% for c in aar.integrity_checks %}<tr><td>{{ c.drill }}</td><td>{{ c.name }}</td><td class="{{ cls(c.ok) }}">{{ "ok" if c.ok else "FAILED" }}</td><td>{{ c.detail }}</td></tr>
{% else %}<tr><td colspan="4">none recorded</td></tr>{% endfor %}</table>
<h2>6. Results</h2>
<table><tr><th>drill</th><th>verdict</th><th>reasons</th></tr>
{% for r in aar.results %}<tr><td>{{ r.drill }}</td><td>{{ r.verdict }}</td><td>{{ r.reasons | join("; ") }}</td></tr>{% endfor %}</table>
<h2>7. Issues found</h2>
<table><tr><th>id</th><th>drill</th><th>issue</th><th>severity</th><th>owner</th><th>status</th></tr>
{% for i in aar.issues %}<tr><td>{{ i.id }}</td><td>{{ i.drill }}</td><td>{{ i.title }}</td><td>{{ i.severity }}</td><td>{{ i.owner }}</td><td>{{ i.status }}</td></tr>
{% else %}<tr><td colspan="6">none</td></tr>{% endfor %}</table>
<h2>8. Remediation</h2>
<table><tr><th>issue</th><th>action</th><th>owner</th><th>due</th></tr>
{% for r in aar.remediation %}<tr><td>{{ r.issue }}</td><td>{{ r.action }}</td><td>{{ r.owner }}</td><td>{{ r.due }}</td></tr>
{% else %}<tr><td colspan="4">none needed</td></tr>{% endfor %}</table>
<h2>9. Controls evidenced</h2>
<ul>{% for c in aar.controls %}<li>{{ c.id }}{% if c.known %} — {{ c.framework }}: {{ c.title }}{% else %} (not in the catalog){% endif %}</li>{% endfor %}</ul>
<h2>10. Sign-offs</h2>
<p>Required roles: {{ aar.signoffs.required_roles | join(", ") }}. Sign-offs are signed and stored in
{{ aar.signoffs.recorded_in }}.</p>
{% if aar.runbook %}<h2>11. Runbook steps</h2>
{% for rb in aar.runbook %}<h3>{{ rb.drill }} — {{ rb.runbook }}</h3>
{% if rb.warning %}<p class="bad">Warning: {{ rb.warning }}</p>{% endif %}
<table><tr><th>#</th><th>step</th><th>kind</th><th>duration</th><th>result</th><th>note</th><th>command</th></tr>
{% for s in rb.steps %}<tr><td>{{ s.index }}</td><td>{{ s.name }}</td><td>{{ s.kind }}</td><td>{{ fmt(s.duration_s) }}</td>
<td class="{{ cls(s.result in ('done', 'ok')) }}">{{ s.result }}</td><td>{{ s.note }}</td><td>{{ s.command }}{% if s.exit_code is not none %} (exit {{ s.exit_code }}){% endif %}</td></tr>
{% endfor %}</table>
{% if rb.rollback %}<p>Rollback steps kept from the runbook (not run by the drill):</p><ol>{% for r in rb.rollback %}<li>{{ r }}</li>{% endfor %}</ol>{% endif %}
<p>Runbook changes to make (Markdown):</p><pre>{{ rb.changes_markdown }}</pre>
{% endfor %}{% endif %}
</body></html>
"""  # noqa: E501


def _fmt(value: Any) -> str:
    """Seconds to three decimals (ms): the probes cannot resolve finer than that."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f"{value:.3f}s"
    return "—" if value is None else str(value)


def _num(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    return "—" if value is None else str(value)


def _cls(ok: Any) -> str:
    return "" if ok is None else ("ok" if ok else "bad")


@cache
def _template() -> Template:
    """Compiled once per process: compiling costs far more than rendering."""
    env = Environment(autoescape=select_autoescape(default=True), trim_blocks=False)
    return env.from_string(_TEMPLATE)


def render_aar_html(aar: Mapping[str, Any]) -> str:
    """Render the report; autoescaped, since journal details can contain anything."""
    template = _template()
    times = ("t_inject", "t_detect", "t_ack", "t_restore", "t_verified", "t_revert_confirmed")
    return template.render(aar=aar, fmt=_fmt, num=_num, cls=_cls, times=times)
