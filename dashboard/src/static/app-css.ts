// The dashboard's stylesheet, served as /static/app.css (CSP style-src 'self'; no inline styles:
// indentation and bar geometry are classes and SVG attributes, never style="").
const depthRules = Array.from({ length: 31 }, (_, d) => `.d${d} { padding-left: ${0.4 + d * 1.1}rem; }`).join('\n');

export const APP_CSS = `
:root { --fg: #1b1f24; --muted: #5b6470; --bg: #f6f7f9; --card: #fff; --line: #d8dde3; --accent: #1f5fbf; --accent-fg: #fff;
  --ok: #1d7a3a; --err: #b3261e; --warn: #8a5a00; --llm: #6b3fb5; --tool: #0f7f86; --span: #1f5fbf; --focus: #f0a500; }
* { box-sizing: border-box; }
html { font-family: system-ui, -apple-system, "Segoe UI", "DejaVu Sans", sans-serif; font-size: 15px; color: var(--fg); background: var(--bg); }
body { margin: 0; line-height: 1.45; }
a { color: var(--accent); }
a:focus-visible, button:focus-visible, input:focus-visible, select:focus-visible, textarea:focus-visible, summary:focus-visible, main:focus-visible {
  outline: 3px solid var(--focus); outline-offset: 2px; }
.skip { position: absolute; left: -999px; top: 0; background: var(--card); padding: .5rem 1rem; z-index: 10; }
.skip:focus { left: .5rem; }
.top { display: flex; flex-wrap: wrap; align-items: center; gap: .5rem 1.5rem; padding: .6rem 1.2rem; background: #14233a; color: #e8eef6; }
.top a { color: #e8eef6; }
.brand { font-weight: 700; font-size: 1.15rem; text-decoration: none; letter-spacing: .02em; }
.top nav ul { display: flex; flex-wrap: wrap; gap: .2rem .9rem; list-style: none; margin: 0; padding: 0; }
.top nav a { text-decoration: none; padding: .15rem 0; border-bottom: 2px solid transparent; }
.top nav a:hover { border-bottom-color: #8fb3e8; }
.top nav a[aria-current="page"] { border-bottom-color: #fff; font-weight: 600; }
.who { margin-left: auto; display: flex; flex-wrap: wrap; gap: .3rem .8rem; align-items: center; font-size: .9rem; }
.role { background: #2e4a70; border-radius: 3px; padding: 0 .4rem; }
main { max-width: 1280px; margin: 0 auto; padding: 1rem 1.2rem 2rem; }
main.narrow { max-width: 30rem; }
h1 { font-size: 1.5rem; margin: .4rem 0 1rem; }
h2 { font-size: 1.15rem; margin: 1.6rem 0 .6rem; }
h3 { font-size: 1rem; margin: 1rem 0 .4rem; }
footer { color: var(--muted); font-size: .85rem; text-align: center; padding: 1rem; }
.muted { color: var(--muted); }
.empty { color: var(--muted); text-align: center; padding: 1rem; }
code, .mono { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: .88em; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(12rem, 1fr)); gap: .8rem; margin: 0 0 1rem; padding: 0; list-style: none; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 6px; padding: .8rem 1rem; }
.card .label { color: var(--muted); font-size: .85rem; display: block; }
.card .value { font-size: 1.5rem; font-weight: 650; display: block; }
.panel { background: var(--card); border: 1px solid var(--line); border-radius: 6px; padding: .8rem 1rem; margin: 1rem 0; overflow-x: auto; }
.panel > h2:first-child, .panel > h3:first-child { margin-top: 0; }
time { white-space: nowrap; }
.grid2 { display: grid; grid-template-columns: repeat(auto-fit, minmax(24rem, 1fr)); gap: 1rem; }
table { border-collapse: collapse; width: 100%; background: var(--card); }
th, td { text-align: left; padding: .35rem .55rem; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-size: .85rem; color: var(--muted); font-weight: 600; background: #eef1f5; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
caption { text-align: left; font-weight: 600; padding: .3rem 0; }
.notice { border-radius: 6px; padding: .6rem 1rem; margin: 0 0 1rem; border: 1px solid var(--line); background: var(--card); }
.notice p { margin: .2rem 0; }
.notice-ok { border-color: #9bd1ab; background: #eefaf1; }
.notice-error { border-color: #e3a29d; background: #fdf0ef; }
.notice-info { border-color: #a8c3ea; background: #eef4fd; }
.notice-unavailable { border-color: #d7c28e; background: #fbf6e8; }
.secret code.reveal { display: inline-block; padding: .3rem .5rem; background: #fff; border: 1px dashed var(--muted); word-break: break-all; }
.visually-hidden { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
.js-only { display: none; }
html.js .js-only { display: inline-block; }
form.stack { display: grid; gap: .35rem; max-width: 28rem; }
form.stack button { justify-self: start; margin-top: .5rem; }
form.inline { display: inline; }
form.filters { display: flex; flex-wrap: wrap; gap: .6rem 1rem; align-items: flex-end; background: var(--card); border: 1px solid var(--line); border-radius: 6px; padding: .7rem 1rem; margin-bottom: 1rem; }
form.filters .f { display: flex; flex-direction: column; gap: .15rem; }
form.filters label { font-size: .85rem; color: var(--muted); }
fieldset { border: 1px solid var(--line); border-radius: 6px; }
fieldset.checks { display: flex; flex-wrap: wrap; gap: .2rem 1rem; }
input, select, textarea { font: inherit; padding: .3rem .45rem; border: 1px solid #9aa4b1; border-radius: 4px; background: #fff; color: var(--fg); }
textarea { width: 100%; min-height: 4rem; }
button { font: inherit; cursor: pointer; padding: .35rem .9rem; border-radius: 4px; border: 1px solid var(--accent); background: var(--accent); color: var(--accent-fg); }
button.secondary { background: #fff; color: var(--accent); }
button.danger { background: var(--err); border-color: var(--err); }
button.link { background: none; border: none; color: inherit; text-decoration: underline; padding: 0; }
.pager { display: flex; gap: 1.2rem; align-items: center; margin: .8rem 0; }
.status-ok, .status-ready { color: var(--ok); font-weight: 600; }
.status-failed, .status-error, .status-not_ready, .status-dead { color: var(--err); font-weight: 600; }
.status-disabled, .status-pending, .status-delivering { color: var(--warn); font-weight: 600; }
.badge { display: inline-block; font-size: .78rem; border-radius: 3px; padding: 0 .35rem; border: 1px solid currentColor; margin-left: .3rem; }
.badge-error { color: var(--err); }
.badge-llm { color: var(--llm); }
.badge-tool { color: var(--tool); }
.badge-shadow { color: var(--warn); }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1rem; margin: 0; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; }
svg.chart { width: 100%; height: auto; display: block; }
svg.chart .bar { fill: var(--span); }
svg.chart .bar-over { fill: var(--err); }
svg.chart .limit { stroke: var(--err); stroke-width: 2; stroke-dasharray: 4 3; }
svg.chart .axis { stroke: var(--line); }
svg.chart text { font-size: 11px; fill: var(--muted); }
table.waterfall td { padding-top: .2rem; padding-bottom: .2rem; }
table.waterfall td.name { white-space: nowrap; max-width: 28rem; overflow: hidden; text-overflow: ellipsis; }
table.waterfall td.timeline { width: 40%; min-width: 16rem; }
table.waterfall tr.error td.name a { color: var(--err); font-weight: 600; }
svg.bar { width: 100%; height: 12px; display: block; }
svg.bar rect { fill: var(--span); }
svg.bar rect.llm { fill: var(--llm); }
svg.bar rect.tool { fill: var(--tool); }
svg.bar rect.error { fill: var(--err); }
.axis-ticks { display: flex; justify-content: space-between; font-weight: 400; font-size: .75rem; }
details.span { background: var(--card); border: 1px solid var(--line); border-radius: 6px; margin: .4rem 0; padding: .3rem .8rem; }
details.span[open] { padding-bottom: .8rem; }
details.span summary { cursor: pointer; font-weight: 600; }
.kv td:first-child { width: 30%; color: var(--muted); word-break: break-all; }
.kv td { word-break: break-word; }
.qr img { width: 200px; height: 200px; background: #fff; padding: 8px; border: 1px solid var(--line); }
.actions { display: flex; flex-wrap: wrap; gap: .4rem; }
${depthRules}
@media (max-width: 720px) { .who { margin-left: 0; } table.waterfall td.timeline { min-width: 8rem; } }
`;
