// Alternatives to the writer's statement, derived from INSERT_BATCH_SQL itself so they stay in step
// with it: json vs jsonb document, COPY into a temp table, and COPY straight into telemetry.spans.
import { copyIn } from './pg.mjs';

const INPUT_RE = /SELECT \* FROM (jsonb?)_to_recordset\(\$1::jsonb?\) AS r\(([\s\S]*?)\)\s*\n\), ins AS/;
const SPANS_INSERT_RE = /INSERT INTO telemetry\.spans \(([\s\S]*?)\)\s*SELECT ([\s\S]*?)\s*FROM input/;
const RETURNING_RE = /RETURNING ([\s\S]*?)\n\), ev AS/;

const SPECIAL = /[\\\n\r\t]/;
const SPECIAL_G = /[\\\n\r\t]/g;
const ESCAPES = { '\\': '\\\\', '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/** COPY text format: \N for null, backslash escapes for the characters COPY treats specially. */
function copyValue(v) {
  if (v === null || v === undefined) return '\\N';
  if (typeof v === 'boolean') return v ? 't' : 'f';
  const s = typeof v === 'object' ? JSON.stringify(v) : String(v);
  return SPECIAL.test(s) ? s.replace(SPECIAL_G, (c) => ESCAPES[c]) : s;
}

/** Split a SQL list on the commas outside parentheses. */
function splitList(s) {
  const out = [];
  let depth = 0;
  let cur = '';
  for (const ch of s) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) {
      out.push(cur.trim());
      cur = '';
    } else cur += ch;
  }
  if (cur.trim()) out.push(cur.trim());
  return out;
}

/**
 * Build the variants, or return a reason why the writer's statement no longer has the shape they
 * are derived from. Each variant: async (client, rows) → { encodeMs, inserted }.
 */
export function writerVariants(sql) {
  const input = INPUT_RE.exec(sql);
  const insert = SPANS_INSERT_RE.exec(sql);
  const returning = RETURNING_RE.exec(sql);
  const aggAt = sql.indexOf('), agg AS (');
  if (!input || !insert || !returning || aggAt < 0) return { reason: 'the writer statement no longer has the json(b)_to_recordset → INSERT … RETURNING → agg shape the variants are derived from' };

  const statement = `${input[1]}_to_recordset`;
  const other = statement === 'json_to_recordset' ? 'jsonb' : 'json';
  const columnDefs = input[2].trim();
  const inputCols = columnDefs.split(',').map((d) => d.trim().split(/\s+/)[0]);
  // telemetry.spans column ← input field (hex-decoded for bytea ids), from the statement's INSERT … SELECT.
  const tableCols = splitList(insert[1]);
  const sources = splitList(insert[2]).map((e) => {
    const hex = /^decode\((\w+), 'hex'\)$/.exec(e);
    return hex ? { field: hex[1], hex: true } : { field: e, hex: false };
  });
  if (sources.length !== tableCols.length || sources.some((x) => !/^\w+$/.test(x.field))) return { reason: 'the spans INSERT … SELECT list is no longer plain columns and decode(…)' };
  const expr = (c) => {
    const src = sources[tableCols.indexOf(c)];
    return src.hex ? `decode(${src.field}, 'hex') AS ${c}` : `${src.field} AS ${c}`;
  };

  // The input CTE reading the temp table; the events/links documents keep their type, renumbered $1/$2.
  const fromTemp = sql.replace(input[0], input[0].replace(/jsonb?_to_recordset\(\$1::jsonb?\) AS r\([\s\S]*?\)\s*\n\)/, 'bench_input\n)'))
    .replace(/\$([23])::(jsonb?)\b/g, (_m, n, t) => `$${Number(n) - 1}::${t}`);
  const otherSql = sql.replace(/jsonb?_to_recordset\(\$1::jsonb?\) AS r\(/, `${other}_to_recordset($1::${other}) AS r(`);
  // Trace summaries only: the statement's agg/tr CTEs over the temp copy instead of the INSERT's RETURNING.
  const summariesSql = `WITH ins AS (SELECT ${splitList(returning[1]).map(expr).join(', ')} FROM bench_input${sql.slice(aggAt)}`;

  const encodeTemp = (rows) => Buffer.from(rows.map((r) => `${inputCols.map((c) => copyValue(r[c])).join('\t')}\n`).join(''));
  const encodeTable = (rows) => Buffer.from(rows.map((r) => `${sources.map((s) => {
    const v = r[s.field];
    return s.hex ? (v === null || v === undefined ? '\\N' : `\\\\x${v}`) : copyValue(v);
  }).join('\t')}\n`).join(''));
  const timed = (fn) => {
    const t0 = performance.now();
    const v = fn();
    return [v, performance.now() - t0];
  };
  const inTransaction = async (client, fn) => {
    await client.query('BEGIN');
    try {
      const r = await fn();
      await client.query('COMMIT');
      return r;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    }
  };

  return {
    setupSql: `CREATE TEMP TABLE bench_input (${columnDefs}) ON COMMIT DELETE ROWS`,
    variants: {
      [statement]: async (client, rows) => {
        const [doc, encodeMs] = timed(() => JSON.stringify(rows));
        const r = await client.query(sql, [doc, '[]', '[]']);
        return { encodeMs, inserted: r.rows[0].inserted };
      },
      [`${other}_to_recordset`]: async (client, rows) => {
        const [doc, encodeMs] = timed(() => JSON.stringify(rows));
        const r = await client.query(otherSql, [doc, '[]', '[]']);
        return { encodeMs, inserted: r.rows[0].inserted };
      },
      copy_temp_then_insert_select: async (client, rows) => {
        const [text, encodeMs] = timed(() => encodeTemp(rows));
        return inTransaction(client, async () => {
          await copyIn(client, `COPY bench_input (${inputCols.join(', ')}) FROM STDIN`, [text]);
          const r = await client.query(fromTemp, ['[]', '[]']);
          return { encodeMs, inserted: r.rows[0].inserted };
        });
      },
      // No ON CONFLICT: a re-sent span fails the COPY (23505) and would need the statement above as fallback.
      copy_spans_direct_plus_summaries: async (client, rows) => {
        const [[temp, table], encodeMs] = timed(() => [encodeTemp(rows), encodeTable(rows)]);
        return inTransaction(client, async () => {
          await copyIn(client, `COPY telemetry.spans (${tableCols.join(', ')}) FROM STDIN`, [table]);
          await copyIn(client, `COPY bench_input (${inputCols.join(', ')}) FROM STDIN`, [temp]);
          const r = await client.query(summariesSql);
          return { encodeMs, inserted: r.rows[0].inserted };
        });
      },
    },
  };
}
