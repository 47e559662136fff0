import t from 'tap'
import { bootGuest, parseReadTrace } from '../../tools/linux-guest.mjs'

t.test('QEMU\'s trace lines become reads of the busiest drive, until the marker', async (t) => {
  const startedAt = 1_796_197_298_000
  const line = (seconds: string, blk: string, offset: number, bytes: number) => `4242@${seconds}:blk_co_preadv blk ${blk} bs 0x2 offset ${offset} bytes ${bytes} flags 0x8`
  const text = [
    line('1796197298.100000', '0xa', 0, 512),
    'some other line',
    line('1796197298.200050', '0xa', 4096, 8192),
    line('1796197298.250000', '0xb', 0, 512),
    line('1796197299.000000', '0xa', 8192, 4096),
  ].join('\n')
  t.same(parseReadTrace(text, startedAt, 500), [
    { ms: 100, offset: 0, length: 512 },
    { ms: 200.1, offset: 4096, length: 8192 },
  ])
})

t.test('a guest whose kernel panics is ended a moment later, and the error says so', async (t) => {
  // `wrap` stands a shell in for QEMU: it writes a panic on the console, then would wait a minute.
  const panicking = (): [string, string[]] => ['sh', ['-c', 'echo "[    0.056000] Kernel panic - not syncing: IO-APIC + timer doesn\'t work!"; exec sleep 60']]
  const started = Date.now()
  const err = await bootGuest('/nonexistent', { accel: 'tcg', timeoutMs: 30_000, wrap: panicking }).catch((e: Error & { guestPanic?: boolean }) => e)
  t.ok(err instanceof Error)
  t.match((err as Error).message, /^the guest's kernel panicked: Kernel panic - not syncing: IO-APIC \+ timer doesn't work!\n/)
  t.equal((err as Error & { guestPanic?: boolean }).guestPanic, true)
  t.match((err as Error & { console?: string }).console, /^\[    0\.056000\] Kernel panic/, 'the console comes with it')
  t.ok(Date.now() - started < 10_000, 'not at the time limit')
})
