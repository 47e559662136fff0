/**
 * The raw clients' rate loop: `concurrency` clients each read random whole blocks back to back for
 * `seconds`; `readBlock(offset)` does one read and throws unless it got exactly the block.
 * Resolves to what the bench prints: requests, elapsed seconds, requests/s and the median and
 * 99th-percentile latency (as fio reports them for the mounts).
 */
export async function measureRate({ concurrency, seconds, blocks, blockSize, readBlock }) {
  let done = 0
  const latencies = []
  const end = performance.now() + seconds * 1000
  const loop = async () => {
    while (performance.now() < end) {
      const offset = Math.floor(Math.random() * blocks) * blockSize
      const sent = performance.now()
      await readBlock(offset)
      latencies.push(performance.now() - sent)
      done++
    }
  }
  const started = performance.now()
  await Promise.all(Array.from({ length: concurrency }, loop))
  const elapsed = (performance.now() - started) / 1000
  latencies.sort((a, b) => a - b)
  const at = (fraction) => latencies[Math.min(latencies.length - 1, Math.floor(fraction * latencies.length))]
  return { requests: done, seconds: elapsed, rate: done / elapsed, medianMs: at(0.5), p99Ms: at(0.99) }
}
