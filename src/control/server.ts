import { chmod, lstat, mkdir, unlink } from 'node:fs/promises'
import { createConnection, createServer, type Socket } from 'node:net'
import { dirname } from 'node:path'
import type { Logger } from '../log.js'
import { describe } from '../backend/errors.js'
import { BadRequestError, ControlSocketInUseError } from './errors.js'
import { MAX_REQUEST_BYTES, type ControlRequest, type ControlResponse } from './protocol.js'

/** Answers one request: `progress` sends progress lines; the resolved value is the result line. */
export type ControlHandler = (request: ControlRequest, progress: (done: number, total: number) => void, signal: AbortSignal) => Promise<unknown>

export interface ControlServer {
  readonly path: string
  /** Stops listening, cancels requests in progress and removes the socket. */
  close(): Promise<void>
}

/**
 * Listens on the Unix socket `path`, readable and writable by its owner only: the folder is
 * created 0700 when missing, and the socket is bound under a 0177 umask and then set 0600, so no
 * other user can ever connect (the folder alone would do for the default /run/snapmount; the mode
 * on the socket also covers a socket put in a shared folder with `control_socket`). A socket left
 * by a daemon that died is replaced; a live one, or anything that is not a socket, is refused.
 */
export async function serveControl(path: string, handler: ControlHandler, logger: Logger): Promise<ControlServer> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 })
  await clearStaleSocket(path)
  const requests = new Set<AbortController>()
  const connections = new Set<Socket>()
  const server = createServer((socket) => {
    connections.add(socket)
    socket.once('close', () => connections.delete(socket))
    serveConnection(socket, handler, requests, logger)
  })
  const umask = process.umask(0o177)
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(path, () => {
        server.off('error', reject)
        resolve()
      })
    })
  } finally {
    process.umask(umask)
  }
  await chmod(path, 0o600)
  logger.info(`control socket ${path}`, { control_socket: path })
  return {
    path,
    async close() {
      for (const request of requests) request.abort(new Error('the daemon is stopping'))
      for (const socket of connections) socket.destroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}

function serveConnection(socket: Socket, handler: ControlHandler, requests: Set<AbortController>, logger: Logger): void {
  const abort = new AbortController()
  socket.once('close', () => abort.abort(new Error('the client went away')))
  socket.on('error', () => {}) // a client that resets is not the daemon's problem; 'close' follows
  const send = (response: ControlResponse) => {
    if (!socket.destroyed) socket.write(`${JSON.stringify(response)}\n`)
  }
  let buffered = ''
  const onData = (chunk: string) => {
    buffered += chunk
    const newline = buffered.indexOf('\n')
    if (newline < 0) {
      if (buffered.length > MAX_REQUEST_BYTES) {
        socket.off('data', onData)
        send({ type: 'error', code: 'E_BAD_REQUEST', message: `request line longer than ${MAX_REQUEST_BYTES} bytes` })
        socket.end()
      }
      return
    }
    socket.off('data', onData)
    requests.add(abort)
    answer(buffered.slice(0, newline), handler, send, abort.signal, logger).finally(() => {
      requests.delete(abort)
      socket.end()
    })
  }
  socket.setEncoding('utf8').on('data', onData)
}

async function answer(line: string, handler: ControlHandler, send: (response: ControlResponse) => void, signal: AbortSignal, logger: Logger): Promise<void> {
  try {
    const request = parseRequest(line)
    logger.debug?.(`control request ${request.op}`, { op: request.op, snapshot: 'name' in request ? request.name : undefined })
    const result = await handler(request, (done, total) => send({ type: 'progress', done, total }), signal)
    send({ type: 'result', result })
  } catch (err) {
    const { code, fix } = err as { code?: unknown; fix?: unknown }
    send({
      type: 'error',
      code: typeof code === 'string' ? code : 'E_FAILED',
      message: describe(err),
      fix: typeof fix === 'string' ? fix : undefined,
    })
  }
}

const OPS: ReadonlyArray<unknown> = ['status', 'warm', 'verify', 'profile-record', 'profile-stop'] satisfies Array<ControlRequest['op']>

/** The request line as JSON with an `op`; the handler checks the rest. */
function parseRequest(line: string): ControlRequest {
  let request: unknown
  try {
    request = JSON.parse(line)
  } catch {
    request = undefined
  }
  const op = (request as { op?: unknown } | null | undefined)?.op
  if (!OPS.includes(op as string)) {
    throw new BadRequestError('not a request', 'send one JSON line with "op": "status", "warm", "verify", "profile-record" or "profile-stop"')
  }
  return request as ControlRequest
}

async function clearStaleSocket(path: string): Promise<void> {
  const stats = await lstat(path).catch(() => undefined)
  if (!stats) return
  if (!stats.isSocket()) {
    throw new ControlSocketInUseError(`control socket path ${path} exists and is not a socket; remove it or set control_socket`)
  }
  const live = await new Promise<boolean>((resolve) => {
    const probe = createConnection(path)
    probe.once('connect', () => {
      probe.destroy()
      resolve(true)
    })
    probe.once('error', () => resolve(false))
  })
  if (live) throw new ControlSocketInUseError(`another snapmount daemon answers on ${path}; stop it or set control_socket`)
  await unlink(path)
}
