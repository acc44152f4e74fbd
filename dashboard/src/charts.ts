// Charts as server-rendered SVG: readable without JavaScript, no inline styles (geometry is SVG
// attributes, colours are classes in app.css), and each has a text alternative (title/desc plus
// the numbers in a table).
import { html, type Html } from './http/html.js';

export interface Point { label: string; value: number }

const W = 900;
const H = 180;
const PAD = { left: 44, right: 8, top: 10, bottom: 24 };

function niceMax(v: number): number {
  if (v <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  const m = v / p;
  return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;
}

/** Vertical bars over equal slots (e.g. spans per minute). */
export function barChart(o: { id: string; title: string; description: string; points: Point[]; format: (v: number) => string; labelEvery?: number }): Html {
  const max = niceMax(Math.max(0, ...o.points.map((p) => p.value)));
  const innerW = W - PAD.left - PAD.right;
  const innerH = H - PAD.top - PAD.bottom;
  const slot = innerW / Math.max(1, o.points.length);
  const every = o.labelEvery ?? Math.max(1, Math.ceil(o.points.length / 6));
  const bars = o.points.map((p, i) => {
    const h = (p.value / max) * innerH;
    const x = PAD.left + i * slot + slot * 0.1;
    return html`<rect class="bar" x="${x.toFixed(1)}" y="${(PAD.top + innerH - h).toFixed(1)}" width="${(slot * 0.8).toFixed(1)}" height="${h.toFixed(1)}"><title>${p.label}: ${o.format(p.value)}</title></rect>`;
  });
  const labels = o.points.map((p, i) => (i % every === 0
    ? html`<text x="${(PAD.left + i * slot + slot / 2).toFixed(1)}" y="${H - 6}" text-anchor="middle">${p.label}</text>` : ''));
  return html`<figure class="panel">
<svg class="chart" viewBox="0 0 ${W} ${H}" role="img" aria-labelledby="${o.id}-t ${o.id}-d">
<title id="${o.id}-t">${o.title}</title><desc id="${o.id}-d">${o.description}</desc>
<line class="axis" x1="${PAD.left}" y1="${PAD.top + innerH}" x2="${W - PAD.right}" y2="${PAD.top + innerH}"/>
<line class="axis" x1="${PAD.left}" y1="${PAD.top}" x2="${PAD.left}" y2="${PAD.top + innerH}"/>
<text x="${PAD.left - 4}" y="${PAD.top + 8}" text-anchor="end">${o.format(max)}</text>
<text x="${PAD.left - 4}" y="${PAD.top + innerH}" text-anchor="end">0</text>
${bars}${labels}
</svg>
<figcaption>${o.title}</figcaption>
</figure>`;
}

export interface LimitBar { label: string; value: number; limit: number; text: string }

/** One horizontal bar per item, with its limit marked (spend vs budget). */
export function limitChart(o: { id: string; title: string; description: string; bars: LimitBar[] }): Html {
  const rowH = 26;
  const labelW = 180;
  const h = Math.max(1, o.bars.length) * rowH + 8;
  const innerW = W - labelW - 90;
  const rows = o.bars.map((b, i) => {
    const scale = Math.max(b.limit, b.value, 1e-12);
    const y = 4 + i * rowH;
    const w = (Math.min(b.value, scale) / scale) * innerW;
    const lx = labelW + (b.limit / scale) * innerW;
    return html`<text x="${labelW - 6}" y="${y + 15}" text-anchor="end">${b.label.length > 26 ? `${b.label.slice(0, 25)}…` : b.label}</text>
<rect class="${b.value > b.limit ? 'bar-over' : 'bar'}" x="${labelW}" y="${y + 4}" width="${Math.max(1, w).toFixed(1)}" height="${rowH - 10}"><title>${b.label}: ${b.text}</title></rect>
<line class="limit" x1="${lx.toFixed(1)}" y1="${y}" x2="${lx.toFixed(1)}" y2="${y + rowH - 2}"/>
<text x="${labelW + innerW + 6}" y="${y + 15}">${b.text}</text>`;
  });
  return html`<figure class="panel">
<svg class="chart" viewBox="0 0 ${W} ${h}" role="img" aria-labelledby="${o.id}-t ${o.id}-d">
<title id="${o.id}-t">${o.title}</title><desc id="${o.id}-d">${o.description}</desc>
${rows}
</svg>
<figcaption>${o.title} (dashed line: the limit)</figcaption>
</figure>`;
}
