import type { ConfigError } from './config-error.js'

/** Builds the error for `field`: every check below reports through one of these. */
export type Fail = (field: string, problem: string, fix: string) => ConfigError

export function asRecord(raw: unknown, field: string, fail: Fail): Record<string, unknown> {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw fail(field, 'must be a mapping of fields', 'see the config example in the README')
  return raw as Record<string, unknown>
}

export function nonEmptyString(value: unknown, field: string, fail: Fail): string {
  if (typeof value !== 'string' || value === '') throw fail(field, 'must be a non-empty string', 'give a path or name in quotes if needed')
  return value
}

export function booleanField(value: unknown, fallback: boolean, field: string, fail: Fail): boolean {
  if (value === undefined) return fallback
  if (typeof value !== 'boolean') throw fail(field, 'must be true or false', `write ${field.split('.').pop()}: true or false`)
  return value
}

/** A whole number within `[min, max]`, or `fallback` when absent. */
export function wholeNumber(value: unknown, range: { min: number; max: number; fallback: number }, field: string, fail: Fail): number {
  if (value === undefined) return range.fallback
  const { min, max } = range
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw fail(field, `must be a whole number from ${min} to ${max}`, `give e.g. ${field.split('.').pop()}: ${range.fallback}`)
  }
  return value
}

export function rejectUnknownFields(record: Record<string, unknown>, known: readonly string[], prefix: string, fail: Fail): void {
  for (const key of Object.keys(record)) {
    if (!known.includes(key)) throw fail(`${prefix}${key}`, 'unknown field', `remove it (known fields: ${known.join(', ')})`)
  }
}

/**
 * C0 controls (newline, ESC among them), DEL and C1 controls: in a name or key they would forge
 * log lines, or move the cursor and recolour a terminal that shows `status`. And the
 * bidirectional controls (marks, embeddings, overrides, isolates): they reorder what a terminal
 * shows, so `evil\u202Egmi.raw` reads as `evilwar.img` ("Trojan Source").
 */
const RAW_IN_JSON = '\\u007f-\\u009f\\u061c\\u200e\\u200f\\u202a-\\u202e\\u2066-\\u2069'
const CONTROL_CHARACTER = new RegExp(`[\\u0000-\\u001f${RAW_IN_JSON}]`)
/** What JSON.stringify leaves raw of the above. */
const CONTROL_RAW_IN_JSON = new RegExp(`[${RAW_IN_JSON}]`, 'g')

/** The first control character in `text`, as `U+001B`, or undefined when there is none. */
export function controlCharacter(text: string): string | undefined {
  const found = CONTROL_CHARACTER.exec(text)?.[0]
  return found === undefined ? undefined : `U+${found.charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')}`
}

/** `text` in double quotes with every control character escaped (JSON.stringify leaves DEL, C1 and the bidirectional ones raw). */
export function quote(text: string): string {
  return JSON.stringify(text).replace(CONTROL_RAW_IN_JSON, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
}
