// GenAI attribute extraction and cost (SPEC §5.3): first matching attribute wins.
import type { TypedAttributes, TypedValue } from './normalize.js';

/** Price per million tokens, in micro-USD (exact integers). */
export interface Price { inputMicros: bigint; outputMicros: bigint }
export type PriceLookup = (model: string) => Price | undefined;

const MODEL_KEYS = ['gen_ai.request.model', 'gen_ai.response.model', 'llm.model_name', 'ai.model.id'];
const PROVIDER_KEYS = ['gen_ai.system', 'gen_ai.provider.name', 'llm.provider'];
const INPUT_KEYS = ['gen_ai.usage.input_tokens', 'gen_ai.usage.prompt_tokens', 'llm.token_count.prompt'];
const OUTPUT_KEYS = ['gen_ai.usage.output_tokens', 'gen_ai.usage.completion_tokens', 'llm.token_count.completion'];
const AGENT_KEYS = ['gen_ai.agent.name', 'strathon.agent'];

function scalar(v: TypedValue | undefined): string | number | boolean | null {
  if (!v) return null;
  if ('stringValue' in v) return v.stringValue;
  if ('intValue' in v) return v.intValue;
  if ('doubleValue' in v) return v.doubleValue;
  if ('boolValue' in v) return v.boolValue;
  return null;
}

function firstString(attrs: TypedAttributes, keys: string[]): string | null {
  for (const k of keys) {
    const s = scalar(attrs[k]);
    if (typeof s === 'string' && s !== '') return s;
  }
  return null;
}

/** Token counts may arrive as int, string or double; anything else (or negative) is ignored. */
function firstCount(attrs: TypedAttributes, keys: string[]): number | null {
  for (const k of keys) {
    const s = scalar(attrs[k]);
    if (s === null || typeof s === 'boolean') continue;
    const n = typeof s === 'number' ? s : Number(String(s).trim());
    if (Number.isFinite(n) && n >= 0 && n <= Number.MAX_SAFE_INTEGER) return Math.round(n);
  }
  return null;
}

/** Decimal string with 10 fractional digits from a count of 1e-12 USD units. */
function picoToDecimal(pico: bigint): string {
  const tenth = (pico + 50n) / 100n; // round to 1e-10
  const s = tenth.toString().padStart(11, '0');
  return `${s.slice(0, -10)}.${s.slice(-10)}`;
}

/** Largest cost a span column holds (numeric(20,10)); a larger one is a client's bogus token count. */
const MAX_COST_PICO = 10n ** 22n;

export function computeCost(inputTokens: number | null, outputTokens: number | null, price: Price): string | null {
  const pico = BigInt(inputTokens ?? 0) * price.inputMicros + BigInt(outputTokens ?? 0) * price.outputMicros;
  return pico >= MAX_COST_PICO ? null : picoToDecimal(pico);
}

function explicitCost(attrs: TypedAttributes): string | null {
  const s = scalar(attrs['gen_ai.usage.cost']);
  if (s === null || typeof s === 'boolean') return null;
  const n = Number(s);
  if (!Number.isFinite(n) || n < 0 || n >= 1e10) return null;
  return n.toFixed(10);
}

export interface GenAiColumns {
  service_name: string | null; agent_name: string | null; model: string | null; provider: string | null;
  operation_name: string | null; tool_name: string | null;
  input_tokens: number | null; output_tokens: number | null; cost_usd: string | null; is_llm: boolean; is_tool: boolean;
}

export function extractGenAi(attrs: TypedAttributes, serviceName: string | null, prices: PriceLookup): GenAiColumns {
  const model = firstString(attrs, MODEL_KEYS);
  const inputTokens = firstCount(attrs, INPUT_KEYS);
  const outputTokens = firstCount(attrs, OUTPUT_KEYS);
  const operation = firstString(attrs, ['gen_ai.operation.name']);
  const toolName = firstString(attrs, ['gen_ai.tool.name']);
  let cost = explicitCost(attrs);
  if (cost === null && model && (inputTokens !== null || outputTokens !== null)) {
    const price = prices(model);
    if (price) cost = computeCost(inputTokens, outputTokens, price);
  }
  return {
    service_name: serviceName,
    agent_name: firstString(attrs, AGENT_KEYS) ?? serviceName,
    model,
    provider: firstString(attrs, PROVIDER_KEYS),
    operation_name: operation,
    tool_name: toolName,
    input_tokens: inputTokens,
    output_tokens: outputTokens,
    cost_usd: cost,
    is_llm: model !== null || inputTokens !== null || outputTokens !== null,
    is_tool: operation === 'execute_tool' || toolName !== null,
  };
}

/**
 * Model name → price: exact match, then without a provider prefix ("openai/gpt-4o"), then the
 * longest known name that the model starts with at a separator ("gpt-4o-mini-2024-07-18").
 */
export function priceLookupFrom(table: Map<string, Price>): PriceLookup {
  const names = [...table.keys()].sort((a, b) => b.length - a.length);
  const cache = new Map<string, Price | undefined>();
  return (raw: string) => {
    if (cache.has(raw)) return cache.get(raw);
    let m = raw.trim().toLowerCase();
    let found = table.get(m);
    if (!found && m.includes('/')) {
      m = m.slice(m.lastIndexOf('/') + 1);
      found = table.get(m);
    }
    if (!found) {
      const name = names.find((n) => m.startsWith(n) && /^[-@:._]/.test(m.slice(n.length)));
      if (name) found = table.get(name);
    }
    if (cache.size < 10_000) cache.set(raw, found);
    return found;
  };
}
