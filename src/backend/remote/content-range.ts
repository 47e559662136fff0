import { BadResponseError, ImpossibleSizeError } from './remote-errors.js'

/** A parsed `Content-Range: bytes first-last/total` (RFC 9110 §14.4); `total` may be unknown (`*`). */
export interface ContentRange {
  first: number
  last: number
  total: number | undefined
}

const CONTENT_RANGE = /^bytes (\d+)-(\d+)\/(\d+|\*)$/

/** Parses the header of `url`'s answer; a number past 2^53 - 1 is an ImpossibleSizeError, never rounded. */
export function parseContentRange(header: string | undefined, url: string): ContentRange | undefined {
  const match = header === undefined ? null : CONTENT_RANGE.exec(header.trim())
  if (!match) return undefined
  const [, first, last, total] = match as unknown as [string, string, string, string]
  return { first: exact(first, url), last: exact(last, url), total: total === '*' ? undefined : exact(total, url) }
}

/** The total size from an unsatisfiable range's `Content-Range: bytes *\/total` (a 416 answer). */
export function parseUnsatisfiedRange(header: string | undefined, url: string): number | undefined {
  const match = header === undefined ? null : /^bytes \*\/(\d+)$/.exec(header.trim())
  return match ? exact(match[1]!, url) : undefined
}

function exact(digits: string, url: string): number {
  const value = Number(digits)
  if (!Number.isSafeInteger(value)) throw new ImpossibleSizeError(url, 'Content-Range', digits)
  return value
}

/**
 * Throws unless `header` says exactly bytes `offset`..`last` of an object of `size` bytes (an
 * unknown total, `*`, is taken): what a ranged answer must say before its body counts.
 */
export function assertContentRange(header: string | undefined, offset: number, last: number, size: number, url: string): void {
  const range = parseContentRange(header, url)
  if (!range || range.first !== offset || range.last !== last || (range.total !== undefined && range.total !== size)) {
    throw new BadResponseError(url, `Content-Range ${JSON.stringify(header)} for bytes ${offset}-${last}/${size}`)
  }
}
