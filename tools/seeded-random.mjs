// A small deterministic generator (mulberry32), shared by the tests' data and the bench's read
// lists, so a failing random read can be replayed and runs compare. Types in seeded-random.d.mts.

/** Numbers in [0, 1), the same sequence for the same seed on every machine. */
export function seededRandom(seed) {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
