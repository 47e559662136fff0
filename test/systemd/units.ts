import t, { type Test } from 'tap'
import { execFile } from 'node:child_process'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { SNAPMOUNT } from '../fixtures/daemon.js'
import { tempDir } from '../fixtures/temp-dir.js'

const run = promisify(execFile)
const UNITS = fileURLToPath(new URL('../../systemd/', import.meta.url))
const INSTALLED = '/usr/local/bin/snapmount'

/**
 * systemd-analyze verify checks that ExecStart's binary exists, and the units name the installed
 * path, which a checkout does not have. So each unit is verified as a copy whose ExecStart is
 * this checkout's bin/snapmount, every other line unchanged. Warnings (unknown keys, values that
 * do not parse) leave the exit code 0, so the test also wants stderr empty.
 */
async function verifyCopy(t: Test, unit: string, copyName = unit) {
  const dir = await tempDir(t)
  const text = await readFile(join(UNITS, unit), 'utf8')
  t.match(text, new RegExp(`^ExecStart=${INSTALLED} `, 'm'), 'ExecStart names the installed path')
  const copy = join(dir, copyName)
  await writeFile(copy, text.replaceAll(INSTALLED, SNAPMOUNT))
  const { stdout, stderr } = await run('systemd-analyze', ['verify', copy])
  t.equal(stderr, '', `systemd-analyze verify ${copyName}: no warnings`)
  t.equal(stdout, '')
  return text
}

/** `Key=value` lines of a unit, comments left out. */
function directives(text: string): Map<string, string> {
  const lines = text.split('\n').filter((line) => /^[A-Za-z]+=/.test(line))
  return new Map(lines.map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]))
}

/** Each of these gives the service a mount namespace of its own, and the FUSE mount would stay in it. */
const NAMESPACING = ['ProtectSystem', 'ProtectHome', 'PrivateTmp', 'PrivateDevices', 'PrivateMounts', 'ReadOnlyPaths', 'ReadWritePaths', 'InaccessiblePaths', 'TemporaryFileSystem', 'BindPaths', 'ProtectKernelTunables', 'ProtectKernelModules', 'ProtectKernelLogs', 'ProtectControlGroups', 'ProtectProc', 'MountFlags']

for (const [unit, config] of [['snapmount.service', '/etc/snapmount/snapmount.yaml'], ['snapmount@.service', '/etc/snapmount/%i.yaml']] as const) {
  t.test(`${unit} passes systemd-analyze verify and says what the service needs`, async (t) => {
    const text = await verifyCopy(t, unit)
    if (unit.includes('@')) await verifyCopy(t, unit, 'snapmount@disks.service')
    const unitOf = directives(text)
    t.equal(unitOf.get('ExecStart'), `${INSTALLED} mount --config ${config}`)
    t.equal(unitOf.get('Type'), 'notify', 'ready only once snapmount says so')
    t.equal(unitOf.get('NotifyAccess'), 'all', 'the message comes from the systemd-notify child')
    t.equal(unitOf.get('ExecReload'), '/bin/kill -HUP $MAINPID')
    t.equal(unitOf.get('Restart'), 'on-failure')
    t.equal(unitOf.get('RestartPreventExitStatus'), '2', 'bad input is not restarted')
    t.equal(unitOf.get('After'), 'network-online.target')
    t.equal(unitOf.get('Wants'), 'network-online.target')
    t.equal(unitOf.get('DeviceAllow'), '/dev/fuse rw')
    t.equal(unitOf.get('CapabilityBoundingSet'), 'CAP_SYS_ADMIN', 'no CAP_DAC_READ_SEARCH: only images root may read are served')
    t.match(text, /^# .*root alone does[^]*options: \{ gid: kvm \}/m, 'says who reads by default and how to let a hypervisor\'s group in')
    for (const key of NAMESPACING) t.notOk(unitOf.has(key), `no ${key}: the mount must reach the host's namespace`)
  })
}

t.test('the two units differ only in the config they read and their descriptions', async (t) => {
  const plain = directives(await readFile(join(UNITS, 'snapmount.service'), 'utf8'))
  const template = directives(await readFile(join(UNITS, 'snapmount@.service'), 'utf8'))
  for (const key of new Set([...plain.keys(), ...template.keys()])) {
    if (key === 'ExecStart' || key === 'Description') continue
    t.equal(template.get(key), plain.get(key), key)
  }
})
