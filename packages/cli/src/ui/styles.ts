/**
 * The settings screen's stylesheet, served as `/ui.css` (a TypeScript string so that tsc's
 * output is the whole app: no copy step). Colours meet WCAG AA contrast on white; focus is
 * always visible (a thick outline, never removed).
 */
export const UI_CSS = `
:root { --ink: #1b1f23; --muted: #4a5560; --line: #d0d7de; --accent: #0b6e4f;
  --accent-ink: #ffffff; --bad: #a4161a; --warn-bg: #fff4d6; --bad-bg: #fde8e8;
  --ok-bg: #e6f4ea; --focus: #1a5fb4; font-family: system-ui, sans-serif; color: var(--ink); }
* { box-sizing: border-box; }
body { margin: 0; line-height: 1.5; background: #f6f8fa; }
.skip { position: absolute; left: -999px; }
.skip:focus { left: 8px; top: 8px; background: #fff; padding: 4px 8px; z-index: 2; }
header.top { display: flex; align-items: center; gap: 24px; padding: 8px 24px;
  background: var(--accent); color: var(--accent-ink); flex-wrap: wrap; }
.brand { font-weight: 700; margin: 0; font-size: 1.1rem; }
nav ul { display: flex; gap: 4px; list-style: none; margin: 0; padding: 0; flex-wrap: wrap; }
nav a { color: var(--accent-ink); text-decoration: none; padding: 6px 10px; border-radius: 6px;
  display: inline-block; }
nav a[aria-current="page"] { background: #053d2c; font-weight: 600;
  text-decoration: underline; text-underline-offset: 4px; }
main { max-width: 860px; margin: 24px auto; padding: 0 24px; }
footer { max-width: 860px; margin: 0 auto 24px; padding: 0 24px; color: var(--muted);
  font-size: 0.9rem; }
h1 { font-size: 1.6rem; margin: 0 0 12px; }
h2 { font-size: 1.2rem; margin: 0 0 8px; }
h3 { font-size: 1.05rem; margin: 12px 0 6px; }
section.card { background: #fff; border: 1px solid var(--line); border-radius: 10px;
  padding: 16px 20px; margin: 0 0 16px; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px; margin: 0; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; }
button, .button { font: inherit; padding: 8px 16px; border-radius: 8px; cursor: pointer;
  border: 1px solid var(--accent); background: var(--accent); color: var(--accent-ink); }
a.button { display: inline-block; text-decoration: none; }
button.secondary { background: #fff; color: var(--accent); }
button.danger { background: var(--bad); border-color: var(--bad); }
button:disabled { opacity: 0.55; cursor: not-allowed; }
a { color: #0a58a6; }
:focus-visible { outline: 3px solid var(--focus); outline-offset: 2px; }
nav a:focus-visible { outline-color: #ffffff; }
label { display: block; font-weight: 600; margin: 10px 0 4px; }
input[type="text"], input[type="password"], textarea { font: inherit; width: 100%;
  max-width: 36rem; padding: 8px 10px; border: 1px solid #6e7781; border-radius: 6px; }
textarea { min-height: 4.5rem; font-family: ui-monospace, monospace; }
.hint { color: var(--muted); font-size: 0.92rem; margin: 2px 0 8px; }
.row { display: flex; gap: 8px; flex-wrap: wrap; align-items: center; margin: 12px 0 0; }
.choices { display: grid; grid-template-columns: repeat(auto-fit, minmax(220px, 1fr)); gap: 12px; }
.choice { border: 1px solid var(--line); border-radius: 10px; padding: 12px 14px; background: #fff; }
.choice h3 { margin-top: 0; }
.alert { border-radius: 8px; padding: 10px 14px; margin: 12px 0; border: 1px solid; }
.alert.error { background: var(--bad-bg); border-color: var(--bad); }
.alert.warn { background: var(--warn-bg); border-color: #9a6700; }
.alert.ok { background: var(--ok-bg); border-color: var(--accent); }
.alert code { font-weight: 700; }
.key-groups { display: grid; grid-template-columns: repeat(4, max-content); gap: 6px 14px;
  font-family: ui-monospace, monospace; font-size: 1.25rem; margin: 8px 0; padding: 0;
  list-style: none; }
.key-groups li span.n { color: var(--muted); font-size: 0.75rem; margin-right: 4px; }
progress { width: 100%; height: 1.2rem; }
.meter { display: flex; gap: 4px; max-width: 36rem; margin: 6px 0 2px; }
.meter span { flex: 1; height: 8px; border-radius: 4px; background: var(--line); }
.meter[data-score="1"] span:nth-child(-n+1) { background: var(--bad); }
.meter[data-score="2"] span:nth-child(-n+2) { background: #9a6700; }
.meter[data-score="3"] span:nth-child(-n+3) { background: var(--accent); }
.meter[data-score="4"] span:nth-child(-n+4) { background: var(--accent); }
ul.protections { list-style: none; padding: 0; margin: 0; }
li.protection { border-top: 1px solid var(--line); padding: 10px 0; }
li.protection p { margin: 0; }
ul.rules { margin: 4px 0; padding-left: 1.2rem; color: var(--muted); }
table { border-collapse: collapse; width: 100%; font-size: 0.95rem; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid var(--line); }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
svg.chart { width: 100%; max-width: 780px; height: auto; display: block; }
svg.chart .bar { fill: var(--accent); }
svg.chart .axis { stroke: #6e7781; stroke-width: 1; }
svg.chart text { font-size: 11px; fill: var(--muted); }
.attempts { font-size: 1.05rem; font-weight: 600; }
.lockout { border: 2px solid var(--bad); background: var(--bad-bg); border-radius: 10px;
  padding: 16px 20px; }
.visually-hidden { position: absolute; width: 1px; height: 1px; overflow: hidden;
  clip: rect(0 0 0 0); white-space: nowrap; }
`;
