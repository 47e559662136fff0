// The peers snapmount is compared with: found or installed before any measurement, and the
// mount description they share (QEMU's FUSE export).

import { access } from 'node:fs/promises'
import { progress } from './progress.mjs'

/** QEMU's curl block driver, a module of Debian's qemu-block-extra. */
export const QEMU_CURL_MODULE = '/usr/lib/x86_64-linux-gnu/qemu/block-curl.so'

/** nbdkit's curl plugin (Debian's nbdkit package carries it). */
export const NBDKIT_CURL_PLUGIN = '/usr/lib/x86_64-linux-gnu/nbdkit/plugins/nbdkit-curl-plugin.so'

/** rclone's defaults that matter for reading (printed under the tables). */
export const RCLONE_SETTINGS = '--vfs-cache-mode off, --vfs-read-chunk-size 128Mi (doubling, no limit), --buffer-size 16Mi, --vfs-read-wait 20ms'

/**
 * A peer's program (httpfs2, s3fs, rclone, qemu-storage-daemon): found on PATH with every `files`
 * it needs, else installed with apt-get (its Debian `packages`) when Debian has them. Returns
 * { path, note }, or { note } saying why it is absent. Run before any measurement, so apt and
 * dpkg never run beside one.
 */
export async function ensurePeer(procs, command, packages = [command], files = []) {
  const which = async () => (await procs.run('sh', ['-c', `command -v ${command}`]).catch(() => ({ stdout: '' }))).stdout.trim()
  const version = async () => (await procs.run('dpkg-query', ['-W', '-f=${Version}', packages[0]]).catch(() => ({ stdout: '' }))).stdout.trim()
  const complete = async () => (await which()) !== '' && (await Promise.all(files.map((f) => access(f).then(() => true, () => false)))).every(Boolean)
  if (await complete()) return { path: await which(), note: `${command} ${(await version()) || '(not from a package)'}, already installed` }
  for (const name of packages) {
    const policy = (await procs.run('apt-cache', ['policy', name]).catch(() => ({ stdout: '' }))).stdout
    const candidate = /Candidate:\s*(\S+)/.exec(policy)?.[1]
    if (!candidate || candidate === '(none)') return { note: `${command} not measured: not installed, and apt-cache policy ${name} has no candidate` }
  }
  progress(`installing ${packages.join(' ')} with apt-get`)
  try {
    await procs.run('apt-get', ['install', '-y', '-q', '--no-install-recommends', ...packages], { env: { DEBIAN_FRONTEND: 'noninteractive' } })
  } catch (err) {
    return { note: `${command} not measured: apt-get install ${packages.join(' ')} failed (${err.message.split('\n').at(-1)})` }
  }
  return (await complete()) ? { path: await which(), note: `${command} ${await version()}, installed by this run (apt-get)` } : { note: `${command} not measured: installed but not complete` }
}

/** The first group of `pattern` in what `command args` prints (stdout and stderr); '' if it fails. */
export async function versionOf(procs, command, args, pattern) {
  const { stdout, stderr } = await procs.run(command, args).catch(() => ({ stdout: '', stderr: '' }))
  return pattern.exec(`${stdout}${stderr}`)?.[1] ?? ''
}

/**
 * qemu-storage-daemon exporting one block node over FUSE on a regular file, read-only. The
 * export's file is the mount's file; QEMU unmounts and exits 0 on SIGTERM.
 */
export function qemuMount(key, title, blockdev, qemu) {
  return {
    key,
    title,
    fileMount: true,
    listedWhenMounted: true,
    command: (file) => [qemu.path, '--blockdev', `${blockdev},node-name=src,read-only=on`, '--export', `type=fuse,id=exp,node-name=src,mountpoint=${file},writable=off`],
  }
}
