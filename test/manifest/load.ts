import t from 'tap'
import { truncate, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { MAX_MANIFEST_BYTES, ManifestMismatchError, readManifestBytes } from '../../src/manifest/load.js'
import { tempDir } from '../fixtures/temp-dir.js'

const context = { env: {}, logger: { info: () => {}, warn: () => {}, error: () => {} } }

t.test('a manifest is read whole; one larger than any manifest (an image named by mistake) is refused unread', async (t) => {
  const dir = await tempDir(t)
  const path = join(dir, 'm')
  await writeFile(path, 'small')
  t.equal((await readManifestBytes({ name: 'manifest', type: 'file', path }, context, 'disk')).toString(), 'small')
  await truncate(path, MAX_MANIFEST_BYTES + 1)
  const err = await readManifestBytes({ name: 'manifest', type: 'file', path }, context, 'disk').catch((e: unknown) => e)
  t.type(err, ManifestMismatchError)
  t.match((err as Error).message, /^disk: the manifest is 1073741825 bytes, more than any manifest snapmount reads/)
  t.equal((err as ManifestMismatchError).code, 'E_MANIFEST_MISMATCH')
})
