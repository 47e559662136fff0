import t from 'tap'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { startNginx as start } from '../../tools/nginx.mjs'
import { tempDir } from '../fixtures/temp-dir.js'

// tools/nginx.mjs's pause: a hung server for the failover benchmark (bench/mirrors-failover.mjs
// --hang), nginx frozen with SIGSTOP so it takes requests and answers none.

t.test('paused, nginx takes a request and answers nothing; resumed, it answers; stopped while paused, it exits', async (t) => {
  const dir = await tempDir(t)
  await writeFile(join(dir, 'disk.img'), 'sixteen bytes!!\n')
  const nginx = await start(dir)
  t.teardown(() => nginx.stop())
  t.equal(await (await fetch(nginx.url('disk.img'))).text(), 'sixteen bytes!!\n')
  await nginx.pause()
  const hung = await fetch(nginx.url('disk.img'), { signal: AbortSignal.timeout(300) }).then(
    () => 'answered',
    (err: Error) => err.name,
  )
  t.equal(hung, 'TimeoutError', 'no answer within 300 ms')
  await nginx.resume()
  t.equal(await (await fetch(nginx.url('disk.img'))).text(), 'sixteen bytes!!\n', 'answers again')
  await nginx.pause()
  const started = performance.now()
  await nginx.stop()
  t.ok(performance.now() - started < 4000, 'stop thaws it first: it exits on SIGTERM, not after the SIGKILL grace')
})
