// The S3 parts: the image as one object in Ceph's radosgw, at 0 ms and at RTT_MS, through
// snapmount, s3fs and rclone mount, beside a raw SDK client.

import { access, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { basename, join } from 'node:path'
import { CEPH_MON, CEPH_OSD, RADOSGW, clearStaleRadosgw, startRadosgw } from '../../tools/radosgw.mjs'
import { versionOf } from '../lib/peers.mjs'
import { progress } from '../lib/progress.mjs'
import { IMAGE_BYTES, NAME, RADOSGW_PREFIX, ROOT, SNAPMOUNT, TEMP_PREFIX } from '../lib/settings.mjs'
import { DELAYS, measureCondition, measureRaw } from './remote.mjs'

export const S3_BUCKET = 'snapmount-bench'
const S3_CLIENT = join(ROOT, 'bench/s3-client.mjs')

/**
 * The environment of everything that talks to radosgw: the bench's, without any AWS_* variable
 * (a profile, a session token or a region would change what is signed, and rclone 1.60 fails at
 * start whenever AWS_CA_BUNDLE is set: "HTTPClient's transport unsupported type"), plus the keys.
 */
export function s3Env(baseEnv, rgw) {
  const env = Object.fromEntries(Object.entries(baseEnv).filter(([name]) => !name.startsWith('AWS_')))
  return { ...env, AWS_ACCESS_KEY_ID: rgw.accessKeyId, AWS_SECRET_ACCESS_KEY: rgw.secretAccessKey }
}

/**
 * The S3 mounts of one endpoint (the condition's proxy): snapmount from a config file, s3fs and
 * rclone when present, each with its defaults but read-only and path-style. `key` is the object's
 * key; s3fs and rclone show it as the file's name (snapmount's config names it NAME).
 */
export function s3Mounts({ endpoint, key, rgw, env, dir, peers }) {
  const port = new URL(endpoint).port
  const mounts = [
    {
      key: 'snapmount',
      title: 'snapmount',
      env,
      command: async (mnt) => {
        const config = join(dir, `snapmount-${basename(mnt)}.yaml`)
        const snapshot = `  - name: ${NAME}\n    type: s3\n    url: s3://${S3_BUCKET}/${key}\n    endpoint: ${endpoint}\n    region: ${rgw.region}\n`
        await writeFile(config, `mountpoint: ${mnt}\nsnapshots:\n${snapshot}`)
        return [SNAPMOUNT, 'mount', '--config', config]
      },
    },
  ]
  if (peers.s3fs.path) {
    mounts.push({
      key: 's3fs',
      title: 's3fs',
      file: key,
      listedWhenMounted: true,
      env,
      // -f: stay a child we can signal. The keys file must be private, or s3fs refuses it.
      command: async (mnt) => {
        const passwd = join(dir, 's3fs.passwd')
        await writeFile(passwd, `${rgw.accessKeyId}:${rgw.secretAccessKey}\n`, { mode: 0o600 })
        return [peers.s3fs.path, S3_BUCKET, mnt, '-f', '-o', `ro,url=${endpoint},use_path_request_style,passwd_file=${passwd}`]
      },
    })
  }
  if (peers.rclone.path) {
    mounts.push({
      key: 'rclone',
      title: 'rclone mount',
      file: key,
      listedWhenMounted: true,
      sigtermExit: 143,
      env,
      command: async (mnt) => {
        const config = join(dir, `rclone-${port}.conf`)
        await writeFile(
          config,
          `[rgw]\ntype = s3\nprovider = Ceph\nendpoint = ${endpoint}\naccess_key_id = ${rgw.accessKeyId}\nsecret_access_key = ${rgw.secretAccessKey}\n`,
          { mode: 0o600 },
        )
        // --cache-dir: rclone's default is under ~/.cache; with the cache off nothing is kept there.
        return [peers.rclone.path, 'mount', `rgw:${S3_BUCKET}`, mnt, '--read-only', '--config', config, '--cache-dir', join(dir, 'rclone-cache')]
      },
    })
  }
  return mounts
}

/**
 * The plain SDK client (bench/s3-client.mjs, resolving with its JSON): one GetObject stream
 * straight to radosgw and through the proxy, 4 and 8 at once, 4 KiB GetObjects.
 */
function measureRawS3(ctx, { rgw, env, key, endpoint, title }) {
  const client = async (mode, to, ...args) => JSON.parse((await ctx.procs.run('node', [S3_CLIENT, mode, to, rgw.region, S3_BUCKET, key, ...args.map(String)], { baseEnv: env })).stdout)
  return measureRaw(ctx, { label: `S3 ${title}`, stream: 'GetObject', request: 'GetObjects' }, {
    seqDirect: async () => (await client('seq', rgw.endpoint)).mbps,
    seq: async (streams) => (streams === 1 ? await client('seq', endpoint) : await client('seqn', endpoint, streams)).mbps,
    rate: (clients, seconds) => client('rate', endpoint, clients, seconds),
  })
}

/** radosgw, the upload (timed), then per condition (those in `which`) the raw client and every mount through that condition's proxy. */
export async function measureS3(ctx, peers, which) {
  const { procs, image } = ctx
  const key = basename(image.path)
  const dir = await mkdtemp(join(tmpdir(), TEMP_PREFIX))
  const temp = procs.addService({ stop: () => rm(dir, { recursive: true, force: true }) })
  let started = Date.now()
  // No compression: the image is incompressible, and radosgw would only spend CPU finding that out.
  const rgw = procs.addService(await startRadosgw({ prefix: RADOSGW_PREFIX, compression: 'none' }))
  const startSeconds = (Date.now() - started) / 1000
  const env = s3Env(procs.env, rgw)
  const results = {}
  try {
    await rgw.createBucket(S3_BUCKET)
    started = Date.now()
    const etag = await rgw.uploadFile(S3_BUCKET, key, image.path)
    const uploadSeconds = (Date.now() - started) / 1000
    progress(`radosgw at ${rgw.endpoint} in ${startSeconds.toFixed(1)} s; ${IMAGE_BYTES} bytes uploaded in ${uploadSeconds.toFixed(1)} s (ETag ${etag})`)
    const version = await versionOf(procs, RADOSGW, ['--version'], /ceph version (\S+)/)
    for (const delay of DELAYS) {
      if (!which.includes(`s3-${delay.suffix}`)) continue
      const condition = await measureCondition(ctx, {
        proto: 's3',
        server: 'Ceph radosgw',
        delay,
        port: Number(new URL(rgw.endpoint).port),
        notes: [`radosgw ${version} started in ${startSeconds.toFixed(1)} s, 1 GiB uploaded in ${uploadSeconds.toFixed(1)} s`],
        rawClient: (endpoint) => {
          progress(`S3 ${delay.title}: ${endpoint}`)
          return measureRawS3(ctx, { rgw, env, key, endpoint, title: delay.title })
        },
        mountsOf: (endpoint) => s3Mounts({ endpoint, key, rgw, env, dir, peers }),
      })
      results[condition.key] = condition
    }
  } finally {
    await procs.stopService(rgw)
    await procs.stopService(temp)
  }
  return results
}

/** Removes what a killed run left: its radosgw (daemons and dir) and its S3 temp dirs. */
export async function clearStaleS3() {
  for (const dir of await clearStaleRadosgw(RADOSGW_PREFIX)) progress(`cleared radosgw left by an earlier run in ${dir}`)
  for (const name of await readdir(tmpdir())) {
    if (!name.startsWith(TEMP_PREFIX)) continue
    progress(`removing ${join(tmpdir(), name)}, left by an earlier run`)
    await rm(join(tmpdir(), name), { recursive: true, force: true })
  }
}

/** radosgw, ceph-mon and ceph-osd must be installed (scripts/setup does it): say so before measuring anything. */
export async function checkCeph() {
  for (const program of [RADOSGW, CEPH_MON, CEPH_OSD]) {
    await access(program).catch(() => {
      throw new Error(`${program} is missing: the S3 part needs Debian's radosgw, ceph-mon and ceph-osd (scripts/setup installs them)`)
    })
  }
}
