"""The report's Jinja2 template (autoescaped: every value is HTML-escaped unless marked safe).

Kept as a Python string so the package needs no package-data entry for it.
Only the Plotly chart fragments and plotly.js itself are marked safe: they
are produced by Plotly, which JSON-encodes every data string with ``<`` and
``/`` escaped.
"""

TEMPLATE = r"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:; font-src data:">
<meta name="generator" content="custseg {{ version }}">
<title>{{ title }}</title>
<style>
  :root { --ink: #1f2933; --muted: #616e7c; --line: #e4e7eb; --accent: #4c78a8; --bg: #f7f8fa; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 15px/1.5 -apple-system, "Segoe UI", Roboto, "DejaVu Sans", Arial, sans-serif; color: var(--ink); background: var(--bg); }
  main { max-width: 1180px; margin: 0 auto; padding: 24px 28px 60px; }
  header { border-bottom: 1px solid var(--line); margin-bottom: 18px; }
  h1 { font-size: 28px; margin: 8px 0 4px; }
  h2 { font-size: 21px; margin: 36px 0 10px; padding-top: 8px; border-top: 1px solid var(--line); }
  h3 { font-size: 17px; margin: 0 0 4px; }
  .muted, .meta { color: var(--muted); font-size: 13px; }
  .kpis { display: grid; grid-template-columns: repeat(auto-fit, minmax(160px, 1fr)); gap: 10px; margin: 16px 0; }
  .kpi { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 10px 14px; }
  .kpi .label { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
  .kpi .value { font-size: 22px; font-weight: 600; overflow-wrap: anywhere; }
  .cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(330px, 1fr)); gap: 12px; }
  .card { background: #fff; border: 1px solid var(--line); border-left: 6px solid var(--seg); border-radius: 8px; padding: 12px 16px; }
  .card .figures { display: flex; gap: 18px; flex-wrap: wrap; margin: 6px 0; font-size: 13px; }
  .card .figures b { display: block; font-size: 18px; }
  .card .action { background: #f0f4f8; border-radius: 6px; padding: 6px 10px; margin-top: 8px; font-size: 14px; }
  .badge { display: inline-block; font-size: 11px; padding: 1px 7px; border-radius: 9px; background: #fde2e1; color: #9b1c1c; margin-left: 6px; vertical-align: middle; }
  table { border-collapse: collapse; width: 100%; background: #fff; font-size: 13px; }
  th, td { border: 1px solid var(--line); padding: 5px 8px; text-align: left; vertical-align: top; }
  th { background: #eef1f5; }
  td.num { text-align: right; font-variant-numeric: tabular-nums; }
  tr.recommended td { background: #eaf5ea; font-weight: 600; }
  .chart { background: #fff; border: 1px solid var(--line); border-radius: 8px; margin: 12px 0; padding: 4px; min-height: 200px; }
  .two { display: grid; grid-template-columns: repeat(auto-fit, minmax(460px, 1fr)); gap: 12px; }
  .findings { background: #fff8e6; border: 1px solid #f5d48a; border-radius: 8px; padding: 8px 16px; }
  ul { padding-left: 20px; }
  pre { background: #fff; border: 1px solid var(--line); padding: 10px; overflow-x: auto; font-size: 12px; }
  footer { margin-top: 40px; color: var(--muted); font-size: 12px; }
</style>
<script>{{ plotly_js }}</script>
</head>
<body>
<main>
<header>
  <h1>{{ title }}</h1>
  <p class="meta">Generated {{ generated }} by custseg {{ version }} · run {{ kpis.run_id or "n/a" }} · segments from {{ kpis.method or "n/a" }}{% if kpis.table_version %} (model version {{ kpis.table_version }}){% endif %}</p>
</header>

<section id="summary">
  <div class="kpis">
  {% for tile in tiles %}
    <div class="kpi"><div class="label">{{ tile.label }}</div><div class="value">{{ tile.value }}</div></div>
  {% endfor %}
  </div>
  {% if tracking_note %}<p class="muted">{{ tracking_note }}</p>{% endif %}
  <h2>Business insights</h2>
  <ul>{% for line in insights %}<li>{{ line }}</li>{% endfor %}</ul>
  <div class="two">
    <div class="chart" data-chart="sizes">{{ charts.sizes }}</div>
    <div class="chart" data-chart="shares">{{ charts.shares }}</div>
  </div>
</section>

<section id="segments">
  <h2>Segments</h2>
  <div class="cards">
  {% for card in cards %}
    <div class="card" style="--seg: {{ card.color }}">
      <h3>{{ card.label }}{% if card.outlier %}<span class="badge">outlier</span>{% endif %}</h3>
      <div class="muted">{{ card.archetype_text }}</div>
      <div class="figures">
        <span>customers<b>{{ card.size }}</b></span>
        <span>share<b>{{ card.share }}</b></span>
        <span>revenue share<b>{{ card.revenue_share }}</b></span>
        <span>median spend<b>{{ card.median_spend }}</b></span>
        <span>median orders<b>{{ card.median_orders }}</b></span>
        {% if card.has_value %}<span>expected value share<b>{{ card.value_share }}</b></span>
        <span>probability alive<b>{{ card.alive }}</b></span>{% endif %}
      </div>
      <p>{{ card.description }}</p>
      <div class="action"><b>Action:</b> {{ card.action }}</div>
    </div>
  {% endfor %}
  </div>
  <div class="chart" data-chart="zscores">{{ charts.zscores }}</div>
  <div class="chart" data-chart="projection">{{ charts.projection }}</div>
</section>

<section id="profile">
  <h2>Segment profile (the original analysis's format)</h2>
  <table class="profile">
    <thead><tr>{% for h in profile_header %}<th>{{ h }}</th>{% endfor %}</tr></thead>
    <tbody>
    {% for row in profile_rows %}
      <tr><td>{{ row.cluster }}</td><td>{{ row.purchase }}</td><td>{{ row.loyalty }}</td><td>{{ row.orders }}</td><td class="num">{{ row.count }}</td></tr>
    {% endfor %}
    </tbody>
  </table>
  <details><summary class="muted">The same table as Markdown</summary><pre>{{ profile_markdown }}</pre></details>
</section>

{% if value %}
<section id="value">
  <h2>Customer value (next {{ value.horizon }} days)</h2>
  <p class="muted">Segments ranked by the lifetime value their customers are expected to bring (BG/NBD purchases times Gamma-Gamma order value, discounted monthly), beside the revenue they brought.</p>
  {% for table in value.tables %}
  {% if table.title %}<h3>{{ table.title }}</h3>{% endif %}
  <table class="profile">
    <thead><tr>{% for h in table.headers %}<th>{{ h.text }}</th>{% endfor %}</tr></thead>
    <tbody>
    {% for row in table.rows %}
      <tr>{% for c in row %}<td{% if c.cls %} class="{{ c.cls }}"{% endif %}>{{ c.text }}</td>{% endfor %}</tr>
    {% endfor %}
    </tbody>
  </table>
  {% endfor %}
</section>
{% endif %}

<section id="methods">
  <h2>Methods compared</h2>
  <table class="comparison">
    <thead><tr>{% for h in comparison_header %}<th>{{ h }}</th>{% endfor %}</tr></thead>
    <tbody>
    {% for row in comparison_rows %}
      <tr class="{{ 'recommended' if row.recommended else '' }}">{% for cell in row.cells %}<td class="{{ cell.cls }}">{{ cell.text }}</td>{% endfor %}</tr>
    {% endfor %}
    </tbody>
  </table>
  <p class="muted">A method is usable with at least 2 segments, at most 25% noise, at most 90% of customers in its largest segment and a stable result; the highest score (silhouette on clustered customers x (1 - noise share)) among usable methods is recommended.</p>
  <div class="chart" data-chart="comparison">{{ charts.comparison }}</div>

  <h3 id="dbscan">DBSCAN findings</h3>
  <div class="findings">
    <ul>
    {% for line in findings %}<li>{{ line }}</li>{% endfor %}
    </ul>
  </div>
  {% if charts.k_distance %}<div class="chart" data-chart="k_distance">{{ charts.k_distance }}</div>{% endif %}
  {% if charts.dendrogram %}<div class="chart" data-chart="dendrogram">{{ charts.dendrogram }}</div>{% endif %}
  {% if charts.migration %}
  <h3>Segment migration</h3>
  <p>{{ migration_note }}</p>
  <div class="chart" data-chart="migration">{{ charts.migration }}</div>
  {% endif %}
</section>

<footer>
  Aggregates only: this report holds no customer names, addresses, tax ids or customer ids.
  Self-contained: the charts and plotly.js are embedded, no network is needed to open it.
</footer>
</main>
</body>
</html>
"""  # noqa: E501 (the report's HTML and CSS, kept as written)
