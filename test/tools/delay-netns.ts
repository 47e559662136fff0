import t, { type Test } from 'tap'
import { GetObjectCommand } from '@aws-sdk/client-s3'
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { access, mkdir, readdir, readFile, readlink } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import {
  clearStaleDelayNetns,
  DelayNetnsUnavailableError,
  IP6TABLES,
  IPTABLES,
  processesIn,
  startDelayNetns,
  type DelayNetns,
  type DelayNetnsOptions,
} from '../../tools/delay-netns.mjs'
import { startNginx } from '../../tools/nginx.mjs'
import { startRadosgw } from '../../tools/radosgw.mjs'
import { detach, isMounted, SNAPMOUNT } from '../fixtures/daemon.js'
import { makeRandomImage } from '../fixtures/images.js'
import { tempDir } from '../fixtures/temp-dir.js'
import { sha256 } from '../fixtures/test-data.js'

const PREFIX = 'snapmount-test-netns-'
const RTT_MS = 10
const PROBE = fileURLToPath(new URL('../../tools/tcp-probe.mjs', import.meta.url))
const DELAY_NETNS = fileURLToPath(new URL('../../tools/delay-netns.mjs', import.meta.url))
const RULE = '-A PREROUTING -i lo -j NFQUEUE --queue-num 0'
/** Big enough to outgrow a restarted window several times over at a 1500-byte MTU, small enough to send in one round trip with the window open. */
const IDLE_ANSWER_BYTES = 2 * 2 ** 20
/** Several retransmission timeouts (at least 200 ms each): long enough for slow start after idle. */
const IDLE_MS = 1_000

/** Starts a namespace of this test's prefix, stopped in teardown. */
async function delayNetns(t: Test, options: Partial<DelayNetnsOptions> = {}): Promise<DelayNetns> {
  const netns = await startDelayNetns({ rttMs: RTT_MS, prefix: PREFIX, ...options })
  t.teardown(() => netns.stop())
  return netns
}

/** Runs tools/tcp-probe.mjs in `netns` and parses its line of JSON. */
async function probe<T>(netns: DelayNetns, ...args: string[]): Promise<T> {
  return JSON.parse((await netns.run(process.execPath, [PROBE, ...args])).stdout) as T
}

/** Why this machine cannot run these tests, or false: the first start says (root, iptables, NFQUEUE). */
async function unavailable(): Promise<string | false> {
  await clearStaleDelayNetns(PREFIX)
  try {
    await (await startDelayNetns({ rttMs: 0, prefix: PREFIX })).stop()
    return false
  } catch (err) {
    if (err instanceof DelayNetnsUnavailableError) return err.message
    throw err
  }
}

const skip = await unavailable()

t.test('a namespace comes up delaying and goes away leaving nothing', { skip }, async (t) => {
  const netns = await delayNetns(t)
  const inode = (await readlink(`/proc/${netns.pid}/ns/net`)).match(/\d+/)![0]
  await t.resolves(access(netns.path), 'listed by ip netns')
  for (const iptables of [IPTABLES, IP6TABLES]) {
    t.match((await netns.run(iptables, ['-t', 'raw', '-S', 'PREROUTING'])).stdout, RULE, `${iptables}: loopback goes to the queue`)
  }
  t.match((await netns.run('ip', ['link', 'show', 'lo'])).stdout, /mtu 1500 .*state UNKNOWN/, 'loopback up, at an Ethernet MTU')
  const inside = (await netns.run('cat', ['/proc/sys/net/ipv4/tcp_slow_start_after_idle', '/proc/sys/net/ipv4/tcp_congestion_control'])).stdout
  t.match(inside, /^1\n(cubic|reno)\n$/, 'slow start after idle on, a congestion control that honours it')
  t.equal(netns.sysctls['net.ipv4.tcp_slow_start_after_idle'], '1')

  // Something a caller left running inside: stop() must not leave the namespace alive through it.
  const left = netns.spawn('sleep', ['600'], { stdio: 'ignore' })
  const leftExit = once(left, 'exit')
  while (!(await processesIn(netns.name)).includes(left.pid!)) await new Promise((resolve) => setTimeout(resolve, 10))
  t.same((await processesIn(netns.name)).sort(), [netns.pid, left.pid].sort(), 'the program and what was started inside')

  await netns.stop()
  t.same(await leftExit, [null, 'SIGKILL'], 'what was left inside was killed')
  await t.rejects(access(netns.path), 'no longer listed')
  t.notOk((await readdir('/run/netns')).includes(netns.name))
  t.same(await pidsInNamespace(inode), [], 'no process in the namespace: it, and its rules, are gone')
  t.ok(await hasEnded(netns.pid), 'the delaying program exited')
})

t.test('a start that fails removes what it made', { skip }, async (t) => {
  const prefix = `${PREFIX}fail-`
  await t.rejects(startDelayNetns({ rttMs: RTT_MS, prefix, sysctls: { 'net.ipv4.no_such_setting': 1 } }), /cannot set \/proc\/sys\/net\/ipv4\/no_such_setting/)
  t.same((await readdir('/run/netns')).filter((name) => name.startsWith(prefix)), [], 'no namespace left')
})

/**
 * A process that starts a namespace with `prefix`, prints its name and the program's pid, then
 * ends as `ending` says: 'exit' (process.exit without stop()) or 'hang' (until killed).
 */
async function creator(prefix: string, ending: 'exit' | 'hang'): Promise<{ child: ChildProcess; name: string; pid: number }> {
  const child = spawn(process.execPath, [
    '--input-type=module',
    '-e',
    `const { startDelayNetns } = await import(${JSON.stringify(DELAY_NETNS)})
     const netns = await startDelayNetns({ rttMs: ${RTT_MS}, prefix: ${JSON.stringify(prefix)} })
     console.log(JSON.stringify({ name: netns.name, pid: netns.pid }))
     ${ending === 'exit' ? 'process.exit(0)' : 'setInterval(() => {}, 1000)'}`,
  ])
  const [line] = (await once(child.stdout!, 'data')) as [Buffer]
  return { child, ...(JSON.parse(line.toString()) as { name: string; pid: number }) }
}

t.test('a creator that exits without stop() leaves nothing', { skip }, async (t) => {
  const { child, name, pid } = await creator(`${PREFIX}exit-`, 'exit')
  t.same(await once(child, 'exit'), [0, null])
  await t.rejects(access(`/run/netns/${name}`), 'its exit handler deleted the namespace')
  t.ok(await hasEnded(pid), 'and killed the program')
})

t.test('clearStale removes what a killed creator left, and nothing live', { skip }, async (t) => {
  const prefix = `${PREFIX}stale-`
  const mine = await delayNetns(t, { prefix })
  // SIGKILLed after starting its namespace: no exit handler runs.
  const left = await creator(prefix, 'hang')
  left.child.kill('SIGKILL')
  await once(left.child, 'exit')
  t.ok((await processesIn(left.name)).includes(left.pid), 'its program still runs in it')

  t.same(await clearStaleDelayNetns(prefix), [left.name], 'only the dead creator’s namespace')
  await t.rejects(access(`/run/netns/${left.name}`))
  t.ok(await hasEnded(left.pid), 'its program was killed')
  await t.resolves(access(mine.path), 'a live creator’s namespace stays')
  t.same(await clearStaleDelayNetns(prefix), [], 'nothing more to clear')
})

t.test('in a 10 ms namespace', { skip }, async (t) => {
  const netns = await delayNetns(t)

  t.test('a connect and each request/response take one round trip', async (t) => {
    const { connectMs, roundTripsMs } = await probe<{ connectMs: number; roundTripsMs: number[] }>(netns, 'rtt', '10')
    t.comment(`connect ${connectMs.toFixed(2)} ms, round trips ${roundTripsMs.map((ms) => ms.toFixed(2)).join(' ')} ms`)
    // Each way is held at least half the round trip, so no exchange is faster than one: a
    // missing delay fails here. A busy machine only adds (the probe runs at normal priority), so
    // the fastest of ten is the link's own: a delay applied twice (2 x RTT) fails the second.
    t.ok(connectMs >= RTT_MS, `connect ${connectMs} ms >= ${RTT_MS}`)
    for (const ms of roundTripsMs) t.ok(ms >= RTT_MS, `${ms} ms >= ${RTT_MS}`)
    const fastest = Math.min(...roundTripsMs)
    t.ok(fastest < 1.5 * RTT_MS, `fastest ${fastest} ms < ${1.5 * RTT_MS}`)
  })

  const dir = await tempDir(t)
  const www = join(dir, 'www')
  await mkdir(www)
  const image = await makeRandomImage(www, 'disk.raw', 64 * 2 ** 20, 17)
  const source = sha256(await readFile(image))
  const nginx = await startNginx(www, { netns, prefix: 'snapmount-test-netns-nginx-' })
  t.teardown(() => nginx.stop())

  t.test('64 MiB from nginx inside arrive byte for byte, nothing dropped', async (t) => {
    const out = join(dir, 'copy.raw')
    const before = await netns.stats()
    const got = await probe<{ bytes: number; megabytesPerSecond: number }>(netns, 'get', nginx.url('disk.raw'), out)
    const after = await netns.stats()
    t.comment(`${got.megabytesPerSecond.toFixed(0)} MB/s; ${after.packets - before.packets} packets, ${(after.cpuSeconds - before.cpuSeconds).toFixed(2)} CPU-s in the program`)
    t.equal(sha256(await readFile(out)), source)
    t.same([after.dropped, after.userDropped], [0, 0], 'no packet dropped by the queue')
  })

  t.test('a snapmount daemon inside reads over the delay; its mount is the host’s', async (t) => {
    const mountpoint = join(dir, 'mnt')
    await mkdir(mountpoint)
    const daemon = await mountInside(t, netns, mountpoint, [mountpoint, nginx.url('disk.raw')])
    t.equal(sha256(await readFile(join(mountpoint, 'disk.raw'))), source, 'read on the host through the mount')
    daemon.kill('SIGTERM')
    t.same(await once(daemon, 'exit'), [0, null])
    t.notOk(await isMounted(mountpoint), 'unmounted on exit')
  })
})

t.test('radosgw runs inside; this process reaches it through a relay', { skip }, async (t) => {
  // 2 ms: Ceph's start takes many round trips (~10 s at 10 ms).
  const netns = await delayNetns(t, { rttMs: 2 })
  const radosgw = await startRadosgw({ netns, prefix: 'snapmount-test-netns-radosgw-' })
  t.teardown(() => radosgw.stop())
  const inside = await Promise.all((await processesIn(netns.name)).map((pid) => readFile(`/proc/${pid}/comm`, 'utf8').catch(() => '')))
  t.same(['ceph-mon', 'ceph-osd', 'radosgw'].filter((name) => !inside.includes(`${name}\n`)), [], 'the cluster runs in the namespace')
  const dir = await tempDir(t)
  const image = await makeRandomImage(dir, 'disk.raw', 3 * 2 ** 20 + 7, 18)
  await radosgw.createBucket('images')
  await radosgw.uploadFile('images', 'disk.raw', image)
  const got = await radosgw.client.send(new GetObjectCommand({ Bucket: 'images', Key: 'disk.raw' }))
  t.equal(sha256(await got.Body!.transformToByteArray()), sha256(await readFile(image)), 'uploaded and read back through the relay')
})

t.test('after an idle second the window starts small again, unless told not to', { skip }, async (t) => {
  type Idle = { openMs: number; afterIdleMs: number }
  const [stock, kept] = await Promise.all([delayNetns(t), delayNetns(t, { sysctls: { 'net.ipv4.tcp_slow_start_after_idle': 0 } })])
  const restarted = await probe<Idle>(stock, 'idle', String(IDLE_ANSWER_BYTES), String(IDLE_MS))
  const open = await probe<Idle>(kept, 'idle', String(IDLE_ANSWER_BYTES), String(IDLE_MS))
  t.comment(`2 MiB with the window open, then after 1 s idle: ${restarted.openMs.toFixed(1)} / ${restarted.afterIdleMs.toFixed(1)} ms (default), ${open.openMs.toFixed(1)} / ${open.afterIdleMs.toFixed(1)} ms (slow start after idle off)`)
  // Measured here: +25-43 ms with the default, +0-1 ms without.
  t.ok(restarted.afterIdleMs - restarted.openMs >= RTT_MS, 'the pause costs at least a round trip more')
  t.ok(open.afterIdleMs - open.openMs < RTT_MS, 'without slow start after idle, less than one')
})

/**
 * Whether `pid` has ended: gone from /proc, or a zombie (an orphan waits for init to reap it;
 * its namespace is released at exit).
 */
async function hasEnded(pid: number): Promise<boolean> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '')
  return stat === '' || stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')
}

/** The pids whose network namespace has this inode (found by scanning /proc). */
async function pidsInNamespace(inode: string): Promise<number[]> {
  const pids = []
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    if ((await readlink(`/proc/${entry}/ns/net`).catch(() => '')) === `net:[${inode}]`) pids.push(Number(entry))
  }
  return pids
}

/**
 * `snapmount mount ARGS` inside `netns`, resolved once mounted (test/fixtures/daemon.ts's
 * startDaemon starts it in this process's namespace only). Teardown kills it and detaches the mount.
 */
async function mountInside(t: Test, netns: DelayNetns, mountpoint: string, args: string[]): Promise<ChildProcess> {
  const child = netns.spawn(SNAPMOUNT, ['mount', ...args], { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL')
      await once(child, 'exit')
    }
    if (await isMounted(mountpoint)) await detach(mountpoint)
  })
  const deadline = Date.now() + 20_000
  while (!/ info: mounted /.test(stderr) || !(await isMounted(mountpoint))) {
    if (child.exitCode !== null) throw new Error(`snapmount exited ${child.exitCode} before mounting:\n${stderr}`)
    if (Date.now() > deadline) throw new Error(`snapmount did not mount within 20 s:\n${stderr}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  return child
}
