import t from 'tap'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { DEFERRED_EXTRA_CA_CERTS, extraCaCerts } from '../../../src/backend/http/extra-ca-certs.js'
import { tempDir } from '../../fixtures/temp-dir.js'

function recordingLogger() {
  const lines: string[] = []
  return { lines, logger: { info: (m: string) => lines.push(`info: ${m}`), warn: (m: string) => lines.push(`warn: ${m}`), error: (m: string) => lines.push(`error: ${m}`) } }
}

t.test('deferred by bin/snapmount: always read, as Node never did', async (t) => {
  const file = join(await tempDir(t), 'extra.pem')
  await writeFile(file, 'PEM A')
  const { lines, logger } = recordingLogger()
  t.equal(await extraCaCerts({ [DEFERRED_EXTRA_CA_CERTS]: file }, false, logger), 'PEM A')
  t.equal(await extraCaCerts({ [DEFERRED_EXTRA_CA_CERTS]: file, NODE_EXTRA_CA_CERTS: '/elsewhere' }, true, logger), 'PEM A', 'the deferred one wins')
  t.same(lines, [])
})

t.test("left to Node: read only beside a ca_file, which replaces Node's default trust", async (t) => {
  const file = join(await tempDir(t), 'extra.pem')
  await writeFile(file, 'PEM B')
  const { lines, logger } = recordingLogger()
  t.equal(await extraCaCerts({ NODE_EXTRA_CA_CERTS: file }, false, logger), undefined, 'Node trusts them already')
  t.equal(await extraCaCerts({ NODE_EXTRA_CA_CERTS: file }, true, logger), 'PEM B')
  t.equal(await extraCaCerts({}, true, logger), undefined, 'no variable, nothing to add')
  t.equal(await extraCaCerts({ [DEFERRED_EXTRA_CA_CERTS]: '', NODE_EXTRA_CA_CERTS: '' }, true, logger), undefined, 'empty means unset, as for Node')
  t.same(lines, [])
})

t.test('a file that cannot be read: logged once, naming it, and left out', async (t) => {
  const missing = join(await tempDir(t), 'missing.pem')
  const { lines, logger } = recordingLogger()
  for (let i = 0; i < 3; i++) t.equal(await extraCaCerts({ [DEFERRED_EXTRA_CA_CERTS]: missing }, false, logger), undefined)
  t.same(lines, [`warn: NODE_EXTRA_CA_CERTS ${missing} cannot be read (ENOENT: no such file or directory, open '${missing}'): its CAs are not trusted; fix the path or its permissions`])
})
