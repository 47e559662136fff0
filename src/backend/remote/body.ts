import { BadResponseError, TruncatedBodyError } from './remote-errors.js'

/**
 * Collects exactly `length` bytes from a response body into one buffer: fewer is a truncation
 * (worth a retry), more is not the range we asked for. Each chunk is copied once, straight into
 * the buffer that is handed to the reader.
 */
export async function collectBody(body: AsyncIterable<Uint8Array>, length: number, url: string): Promise<Buffer> {
  const target = Buffer.allocUnsafe(length)
  let filled = 0
  for await (const chunk of body) {
    if (filled + chunk.length > length) throw new BadResponseError(url, `body longer than the ${length} bytes asked for`)
    target.set(chunk, filled)
    filled += chunk.length
  }
  if (filled !== length) throw new TruncatedBodyError(url, length, filled)
  return target
}

/** Abandons a body we will not read; its abort error is expected and must not crash the daemon. */
export function discardBody(body: { on(event: 'error', listener: () => void): unknown; destroy(): unknown } | undefined): void {
  if (!body) return
  body.on('error', () => {})
  body.destroy()
}
