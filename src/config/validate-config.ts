import { basename, resolve } from 'node:path'
import { ConfigError } from './config-error.js'
import { asRecord, booleanField, controlCharacter, nonEmptyString, quote, rejectUnknownFields, type Fail } from './fields.js'
import { validateHttpSnapshot } from './validate-http.js'
import { validateS3Snapshot } from './validate-s3.js'
import { validateManifest } from './validate-manifest.js'
import { withProfile } from './validate-profile.js'
import { validateSourcesSnapshot } from './validate-sources.js'
import { ACCESS_FIELDS, checkAccess } from './validate-access.js'
import { OBSERVABILITY_FIELDS, checkObservability } from './validate-observability.js'
import { DISK_CACHE_FIELDS, checkDiskCache } from './validate-disk-cache.js'
import { CACHE_BLOCK_KIB, CACHE_SIZE_MIB, CACHE_SIZE_WITH_DISK_MIB, READ_TIMEOUT_MS, SNAPSHOT_TYPES, type Config, type MountOptions, type SnapshotSpec, type SnapshotType } from './config.js'

export interface ValidationContext {
  /** The config file's path, or "command line": the first word of every message. */
  origin: string
  /** Relative paths are taken from here: the config file's folder, or the working directory. */
  baseDir: string
  /** Option values used where the input gives none. */
  defaults: MountOptions
}

const TOP_LEVEL_FIELDS = ['mountpoint', 'options', 'snapshots']
const OPTION_FIELDS = ['allow_other', 'read_timeout_ms', 'cache_size_mib', 'cache_block_kib', ...OBSERVABILITY_FIELDS, ...DISK_CACHE_FIELDS]
const LOCAL_FIELDS = ['name', 'type', 'path']
/** Longest file name Linux accepts (NAME_MAX), in bytes. */
const NAME_MAX_BYTES = 255

/**
 * Turns parsed YAML/JSON (or the command line, put in the same shape) into a `Config`, or throws
 * a `ConfigError` naming the origin, the field, the problem and the fix. Unknown fields are errors,
 * not ignored: a misspelt option silently falling back to its default is worse than a refusal.
 */
export function validateConfig(raw: unknown, context: ValidationContext): Config {
  const fail = (field: string, problem: string, fix: string) => new ConfigError(context.origin, field, problem, fix)
  const top = asRecord(raw, '(top level)', fail)
  rejectUnknownFields(top, TOP_LEVEL_FIELDS, '', fail)

  if (top.mountpoint === undefined) throw fail('mountpoint', 'missing', 'add the directory to mount on, e.g. mountpoint: /mnt/snapshots')
  const mountpoint = resolve(context.baseDir, nonEmptyString(top.mountpoint, 'mountpoint', fail))

  const options = { ...checkOptions(top.options, context.defaults, fail), ...checkAccess(top.options, context.defaults, fail) }

  if (top.snapshots === undefined) throw fail('snapshots', 'missing', 'list at least one snapshot to serve')
  if (!Array.isArray(top.snapshots) || top.snapshots.length === 0) {
    throw fail('snapshots', 'must be a non-empty list', 'list at least one snapshot to serve')
  }
  const snapshots = top.snapshots.map((entry: unknown, index) => validateSnapshot(entry, `snapshots[${index}]`, context.baseDir, options, fail))
  rejectDuplicateNames(snapshots, fail)
  return { mountpoint, options, snapshots }
}


/** Validates an `options` section alone: how the command line's flags override a config file's. */
export function validateOptions(raw: Record<string, unknown>, defaults: MountOptions, origin: string): MountOptions {
  const fail: Fail = (field, problem, fix) => new ConfigError(origin, field, problem, fix)
  return { ...checkOptions(raw, defaults, fail), ...checkAccess(raw, defaults, fail) }
}

function checkOptions(raw: unknown, defaults: MountOptions, fail: Fail): MountOptions {
  // `options:` with everything under it commented out parses as null: no options given.
  if (raw === undefined || raw === null) return { ...defaults }
  const options = asRecord(raw, 'options', fail)
  rejectUnknownFields(options, [...OPTION_FIELDS, ...ACCESS_FIELDS], 'options.', fail)
  const allowOther = options.allow_other === undefined ? defaults.allowOther : options.allow_other
  if (allowOther !== undefined && typeof allowOther !== 'boolean') throw fail('options.allow_other', 'must be true or false', 'write allow_other: true or allow_other: false')
  const readTimeoutMs = options.read_timeout_ms === undefined ? defaults.readTimeoutMs : options.read_timeout_ms
  if (!isWholeIn(readTimeoutMs, READ_TIMEOUT_MS)) {
    const { min, max } = READ_TIMEOUT_MS
    throw fail('options.read_timeout_ms', `must be a whole number from ${min} to ${max}`, `give milliseconds, e.g. read_timeout_ms: ${READ_TIMEOUT_MS.default}`)
  }
  const disk = checkDiskCache(options, defaults, fail)
  const cacheMib = options.cache_size_mib === undefined ? defaultCacheMib(defaults, disk.cacheDir) : options.cache_size_mib
  if (!isWholeIn(cacheMib, CACHE_SIZE_MIB)) {
    const { min, max } = CACHE_SIZE_MIB
    throw fail('options.cache_size_mib', `must be a whole number from ${min} to ${max}`, `give mebibytes, e.g. cache_size_mib: ${CACHE_SIZE_MIB.default}`)
  }
  const blockKib = options.cache_block_kib === undefined ? defaults.blockBytes / KIB : options.cache_block_kib
  if (!isWholeIn(blockKib, CACHE_BLOCK_KIB) || (blockKib & (blockKib - 1)) !== 0) {
    const { min, max } = CACHE_BLOCK_KIB
    throw fail('options.cache_block_kib', `must be a power of two from ${min} to ${max}`, `give kibibytes, e.g. cache_block_kib: ${CACHE_BLOCK_KIB.default}`)
  }
  return { allowOther, readTimeoutMs, cacheBytes: cacheMib * MIB, blockBytes: blockKib * KIB, ...disk, ...checkObservability(options, defaults, fail) }
}

/**
 * The block cache's size when `cache_size_mib` is not given: smaller (CACHE_SIZE_WITH_DISK_MIB)
 * where these options turn the disk cache on over a default that had it off and the usual size;
 * else the size given before (a config file's, under the command line's flags).
 */
function defaultCacheMib(defaults: MountOptions, cacheDir: string | undefined): number {
  const turnedOn = cacheDir !== undefined && defaults.cacheDir === undefined
  return turnedOn && defaults.cacheBytes === CACHE_SIZE_MIB.default * MIB ? CACHE_SIZE_WITH_DISK_MIB : defaults.cacheBytes / MIB
}

const KIB = 1024
const MIB = 1024 * KIB

function isWholeIn(value: unknown, { min, max }: { min: number; max: number }): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= min && value <= max
}

function validateSnapshot(raw: unknown, field: string, baseDir: string, options: MountOptions, fail: Fail): SnapshotSpec {
  // `lazy`, `manifest` and `prefetch_profile` are common to every type: taken out here, before
  // each type refuses fields it does not know.
  const { lazy, manifest, prefetch_profile: profile, ...entry } = asRecord(raw, field, fail)
  const spec = validateSnapshotFields(entry, field, baseDir, options, fail)
  let checked = manifest === undefined ? spec : { ...spec, manifest: validateManifest(manifest, `${field}.manifest`, entry, baseDir, options.readTimeoutMs, fail) }
  if (profile !== undefined) checked = withProfile(checked, profile, `${field}.prefetch_profile`, entry, baseDir, options.readTimeoutMs, fail)
  return booleanField(lazy, false, `${field}.lazy`, fail) ? { ...checked, lazy: true } : checked
}

function validateSnapshotFields(entry: Record<string, unknown>, field: string, baseDir: string, options: MountOptions, fail: Fail): SnapshotSpec {
  if (entry.sources !== undefined) {
    const { defaultName, ...spec } = validateSourcesSnapshot(entry, field, baseDir, options.readTimeoutMs, fail)
    return { name: named(defaultName, entry, field, fail), ...spec }
  }
  if (entry.type === undefined) throw fail(`${field}.type`, 'missing', `add type: one of ${SNAPSHOT_TYPES.join(', ')}`)
  const type = entry.type
  if (!isSnapshotType(type)) {
    throw fail(`${field}.type`, `unknown type ${JSON.stringify(type)}`, `use one of ${SNAPSHOT_TYPES.join(', ')}`)
  }
  if (type === 'http') {
    const { defaultName, ...spec } = validateHttpSnapshot(entry, field, baseDir, options.readTimeoutMs, fail)
    return { name: named(defaultName, entry, field, fail), ...spec }
  }
  if (type === 's3') {
    const { defaultName, ...spec } = validateS3Snapshot(entry, field, options.readTimeoutMs, fail)
    return { name: named(defaultName, entry, field, fail), ...spec }
  }
  rejectUnknownFields(entry, LOCAL_FIELDS, `${field}.`, fail)
  if (entry.path === undefined) throw fail(`${field}.path`, 'missing', 'add path: the image file to serve')
  const path = resolve(baseDir, nonEmptyString(entry.path, `${field}.path`, fail))
  return { name: named(basename(path), entry, field, fail), type, path }
}

/** The snapshot's `name:`, else the one its source suggests; checked either way. */
function named(defaultName: string, entry: Record<string, unknown>, field: string, fail: Fail): string {
  const name = entry.name === undefined ? defaultName : nonEmptyString(entry.name, `${field}.name`, fail)
  checkName(name, `${field}.name`, fail)
  return name
}

/**
 * A name becomes one directory entry: no slash, no NUL, not . or .., at most NAME_MAX bytes, and
 * no control character (it would reach logs and `status` as it is).
 */
function checkName(name: string, field: string, fail: Fail): void {
  const fix = 'give a plain file name such as base.img'
  if (name === '') throw fail(field, 'is empty (the path has no file name to use)', 'add name: with a plain file name')
  if (name.includes('/')) throw fail(field, `${JSON.stringify(name)} contains "/"`, fix)
  if (name.includes('\0')) throw fail(field, `${JSON.stringify(name)} contains a NUL byte`, fix)
  const control = controlCharacter(name)
  if (control !== undefined) throw fail(field, `${quote(name)} contains a control character (${control})`, `${fix}; a name from a URL or key takes its last part, so give name: instead`)
  if (name === '.' || name === '..') throw fail(field, `${JSON.stringify(name)} is not a file name`, fix)
  const bytes = Buffer.byteLength(name)
  if (bytes > NAME_MAX_BYTES) throw fail(field, `is ${bytes} bytes long, over the limit of ${NAME_MAX_BYTES}`, 'give a shorter name')
}

function rejectDuplicateNames(snapshots: SnapshotSpec[], fail: Fail): void {
  const firstIndex = new Map<string, number>()
  snapshots.forEach(({ name }, index) => {
    const earlier = firstIndex.get(name)
    if (earlier !== undefined) {
      throw fail(`snapshots[${index}].name`, `${JSON.stringify(name)} is also the name of snapshots[${earlier}]`, 'give each snapshot its own name')
    }
    firstIndex.set(name, index)
  })
}

function isSnapshotType(value: unknown): value is SnapshotType {
  return (SNAPSHOT_TYPES as readonly unknown[]).includes(value)
}
