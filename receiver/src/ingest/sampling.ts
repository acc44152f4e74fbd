// Trace-id sampling: a pure function of the trace id, so every replica keeps or drops a trace whole.
// Uses the rightmost 56 bits (the W3C Trace Context level 2 "random" part), like OTel's ratio sampler.
export function keepTrace(traceIdHex: string, rate: number): boolean {
  if (rate >= 1) return true;
  if (rate <= 0) return false;
  const r = Number.parseInt(traceIdHex.slice(18), 16); // 14 hex chars = 56 bits, exact in a double
  return r < rate * 2 ** 56;
}
