// What one bench run has running, so a failure or Ctrl-C leaves no mount, server or reader
// behind: one BenchProcesses per run, made in run.mjs and handed to every part.

import { spawn } from 'node:child_process'

export class BenchProcesses {
  /** Running dd/fio/curl: stopped first on SIGINT, so none holds a mount busy while it unmounts. */
  #tools = new Set()
  /** Daemons and their mountpoints still to be cleaned up; each has a `stop()`. */
  #daemons = new Set()
  /** nginx, the proxies, radosgw and temp dirs, stopped after the daemons; each has a `stop()`. */
  #services = new Set()
  /**
   * Set by interrupt(): from then on nothing new is started but the cleanup (a step that failed
   * because its tool was killed must not be followed by the next step while the cleanup runs).
   */
  stopping = false

  /** @param env the environment every child gets (the bench's, without proxy variables) */
  constructor(env) {
    this.env = env
  }

  refuseIfStopping(what) {
    if (this.stopping) throw new Error(`not starting ${what}: the benchmark is stopping`)
  }

  /**
   * Runs a command to completion; rejects with its stderr if it fails. `env` adds to `baseEnv`.
   * Refused once the benchmark is stopping, unless it is part of the cleanup (`cleanup: true`).
   */
  run(command, args, { env, baseEnv = this.env, cleanup = false } = {}) {
    return new Promise((resolve, reject) => {
      if (!cleanup) this.refuseIfStopping(command)
      const child = this.spawnTool(command, args, { env: { ...baseEnv, ...env } })
      let stdout = ''
      let stderr = ''
      child.stdout.on('data', (chunk) => (stdout += chunk))
      child.stderr.on('data', (chunk) => (stderr += chunk))
      child.on('error', reject)
      child.on('close', (code, signal) => {
        if (code === 0) resolve({ stdout, stderr })
        else reject(new Error(`${command} ${args.join(' ')} failed (${signal ?? `exit ${code}`}): ${stderr.trim()}`))
      })
    })
  }

  /** Spawns a short-lived tool (stdout and stderr piped), stopped by interrupt() while it runs. */
  spawnTool(command, args, { env = this.env } = {}) {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env })
    this.#tools.add(child)
    child.on('close', () => this.#tools.delete(child))
    return child
  }

  /** A daemon to stop in cleanup() until it calls daemonStopped(). */
  daemonStarted(daemon) {
    this.#daemons.add(daemon)
  }

  daemonStopped(daemon) {
    this.#daemons.delete(daemon)
  }

  /** Registers a service (`stop()` resolves once it is down) for cleanup(); returns it. */
  addService(service) {
    this.#services.add(service)
    return service
  }

  async stopService(service) {
    await service.stop()
    this.#services.delete(service)
  }

  /** SIGINT and the like: refuse anything new and stop the running tools. Then call cleanup(). */
  interrupt() {
    this.stopping = true
    for (const child of this.#tools) child.kill('SIGTERM')
  }

  /** Stops every daemon still running, then every service. */
  async cleanup() {
    await Promise.allSettled([...this.#daemons].map((daemon) => daemon.stop()))
    await Promise.allSettled([...this.#services].map((service) => service.stop()))
  }
}
