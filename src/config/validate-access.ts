import { controlCharacter, quote, type Fail } from './fields.js'
import type { MountOptions } from './config.js'

/** The options this module checks, beside the others in `options:`. */
export const ACCESS_FIELDS = ['uid', 'gid', 'umask'] as const

type AccessOptions = Pick<MountOptions, 'uid' | 'gid' | 'umask'>

/** Ids as Linux keeps them: 32 bits, with (uid_t)-1 meaning "no change" in chown, never an owner. */
const MAX_ID = 2 ** 32 - 2
/** Octal digits as `umask` writes them: up to four, so 0027, 027 and 27 are all 0o027. */
const OCTAL_UMASK = /^[0-7]{1,4}$/

/**
 * Checks `uid`, `gid` and `umask` of an `options` mapping (or the command line's flags); absent
 * ones keep `defaults`. Ids are numbers or names: a name stays a string here and is looked up
 * when the daemon starts (`src/fuse/access.ts`). `umask` is an octal string only: YAML 1.2 reads
 * an unquoted 0027 as the decimal 27, which would silently mean 0o033.
 */
export function checkAccess(raw: unknown, defaults: AccessOptions, fail: Fail): AccessOptions {
  const options = (raw ?? {}) as Record<string, unknown>
  const uid = options.uid === undefined ? defaults.uid : checkId(options.uid, 'options.uid', 'user', fail)
  const gid = options.gid === undefined ? defaults.gid : checkId(options.gid, 'options.gid', 'group', fail)
  const umask = options.umask === undefined ? defaults.umask : checkUmask(options.umask, fail)
  return { ...(uid !== undefined && { uid }), ...(gid !== undefined && { gid }), ...(umask !== undefined && { umask }) }
}

function checkId(value: unknown, field: string, kind: string, fail: Fail): number | string {
  const fix = `give a number or a ${kind} name, e.g. ${field.split('.').pop()}: libvirt-qemu`
  if (typeof value === 'string' && /^\d+$/.test(value)) value = Number(value)
  if (typeof value === 'number') {
    if (!Number.isInteger(value) || value < 0 || value > MAX_ID) throw fail(field, `must be a whole number from 0 to ${MAX_ID}`, fix)
    return value
  }
  if (typeof value !== 'string' || value === '' || /[:\s]/.test(value)) throw fail(field, `must be a ${kind} id or name`, fix)
  // getent would take "-1" or "--" as its own options; "--" lists every entry, the first being root.
  if (value.startsWith('-')) throw fail(field, `${quote(value)} starts with "-", which no ${kind} name does and no id can`, `give the ${kind}'s name or its number (0 or more)`)
  const control = controlCharacter(value)
  if (control !== undefined) throw fail(field, `${quote(value)} contains a control character (${control})`, fix)
  return value
}

function checkUmask(value: unknown, fail: Fail): number {
  if (typeof value !== 'string' || !OCTAL_UMASK.test(value)) {
    throw fail('options.umask', `must be octal digits in quotes, e.g. "0027" (got ${JSON.stringify(value)})`, 'write umask: "0027" (YAML reads an unquoted 0027 as twenty-seven)')
  }
  return parseInt(value, 8)
}
