/** The median of the defined values (the upper one of an even count); undefined if none. */
export function median(values) {
  const sorted = values.filter((v) => v !== undefined).sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)]
}

/** The largest defined value; undefined if none. */
export function max(values) {
  const defined = values.filter((v) => v !== undefined)
  return defined.length ? Math.max(...defined) : undefined
}

/** The smallest defined value; undefined if none. */
export function min(values) {
  const defined = values.filter((v) => v !== undefined)
  return defined.length ? Math.min(...defined) : undefined
}

/** The nearest-rank `p`th percentile (0-100] of the defined values; undefined if none. */
export function percentile(values, p) {
  const sorted = values.filter((v) => v !== undefined).sort((a, b) => a - b)
  return sorted.length ? sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)] : undefined
}
