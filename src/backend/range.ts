import { OutOfRangeError } from './errors.js'

/** Rejects non-integer, negative, or past-the-end ranges before any I/O is attempted. */
export function assertInRange(offset: number, length: number, size: number): void {
  const valid =
    Number.isSafeInteger(offset) &&
    Number.isSafeInteger(length) &&
    offset >= 0 &&
    length >= 0 &&
    offset + length <= size
  if (!valid) throw new OutOfRangeError(offset, length, size)
}
