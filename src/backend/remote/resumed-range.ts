import type { Retrying } from './retrying.js'

/**
 * Body bytes one attempt stored in its target: contiguous from the target's first byte, and
 * counted only once the response head was accepted (status, Content-Range, the version pin), so
 * every one of them is a byte of the pinned version at its place. Set when the attempt fails.
 */
export interface BodyProgress {
  stored: number
}

/** Reads the pinned version's bytes `[offset, offset + part.length)` into `part` exactly, or throws. */
export type ReadPart = (offset: number, part: Buffer, progress: BodyProgress, signal: AbortSignal) => Promise<unknown>

/**
 * Reads `[offset, offset + target.length)` into `target` with retries, each retry asking only for
 * the bytes the attempts before did not deliver. A body cut mid-way (reset, truncation, body
 * timeout) came over one TCP stream after a head checked against the pin, so its bytes up to the
 * cut are good; asking for all of a range again would cost up to a whole range per fault, inside
 * FUSE's 15 s per operation. The resumed request carries the same pin and its head is checked
 * like the first's, so an object changed meanwhile still fails as changed.
 */
export function readResuming(retrying: Retrying, what: string, offset: number, target: Buffer, readPart: ReadPart, cancel?: AbortSignal): Promise<Buffer> {
  let received = 0
  return retrying(
    what,
    async (signal) => {
      // Every byte came before the failure (a stream that failed after its last byte): nothing to ask.
      if (received === target.length) return target
      const progress: BodyProgress = { stored: 0 }
      try {
        await readPart(offset + received, target.subarray(received), progress, signal)
        return target
      } catch (err) {
        received += progress.stored
        throw err
      }
    },
    cancel,
    () => (received > 0 ? offset + received : undefined),
  )
}
