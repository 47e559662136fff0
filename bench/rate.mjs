/**
 * The raw clients' rate loop: `concurrency` clients each read random whole blocks back to back for
 * `seconds`; `readBlock(offset)` does one read and throws unless it got exactly the block.
 * Resolves to what the bench prints: requests, elapsed seconds, requests/s and the median latency.
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
  return { requests: done, seconds: elapsed, rate: done / elapsed, medianMs: latencies[Math.floor(latencies.length / 2)] }
}
