import { createConnection } from 'node:net'
import { describe } from '../backend/errors.js'
import { BadReplyError, ControlUnavailableError, DaemonError } from './errors.js'
import type { ControlRequest, ControlResponse } from './protocol.js'

/**
 * Sends one request to the daemon on `path` and resolves with its result, calling `onProgress`
 * for each progress line. Rejects with ControlUnavailableError when nothing answers there, and
 * with DaemonError when the daemon answers an error.
 */
export async function controlRequest(path: string, request: ControlRequest, onProgress: (done: number, total: number) => void = () => {}): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(path)
    let settled = false
    const settle = (work: () => void) => {
      if (settled) return
      settled = true
      socket.destroy()
      work()
    }
    let buffered = ''
    socket.setEncoding('utf8')
    socket.once('connect', () => socket.write(`${JSON.stringify(request)}\n`))
    socket.on('data', (chunk: string) => {
      buffered += chunk
      for (let newline = buffered.indexOf('\n'); newline >= 0 && !settled; newline = buffered.indexOf('\n')) {
        const response = parseResponse(buffered.slice(0, newline), path)
        buffered = buffered.slice(newline + 1)
        if (response instanceof BadReplyError) settle(() => reject(response))
        else if (response.type === 'progress') onProgress(response.done, response.total)
        else if (response.type === 'result') settle(() => resolve(response.result))
        else settle(() => reject(new DaemonError(response.code, response.message, response.fix)))
      }
      if (buffered.length > MAX_REPLY_BYTES) settle(() => reject(new BadReplyError(`the daemon on ${path} sent a line longer than ${MAX_REPLY_BYTES} bytes; is it snapmount?`)))
    })
    socket.once('error', (err) => settle(() => reject(unavailable(path, err))))
    socket.once('close', () => settle(() => reject(new ControlUnavailableError(`the daemon on ${path} closed the connection without an answer (did it stop?)`))))
  })
}

function unavailable(path: string, err: NodeJS.ErrnoException): ControlUnavailableError {
  if (err.code === 'ENOENT' || err.code === 'ECONNREFUSED') {
    return new ControlUnavailableError(`no snapmount daemon answers on ${path} (${err.code}); is it running, and for this mountpoint?`)
  }
  if (err.code === 'EACCES') return new ControlUnavailableError(`no permission to use ${path}; run as the daemon's user (root for /run/snapmount)`)
  return new ControlUnavailableError(`cannot talk to the daemon on ${path}: ${describe(err)}`)
}

/** Longest reply line read: a status of thousands of snapshots is a few MiB; anything longer is not ours. */
const MAX_REPLY_BYTES = 16 * 1024 * 1024

/** One reply line as a response, or the error saying why it is none (never an exception: the CLI reports it). */
function parseResponse(line: string, path: string): ControlResponse | BadReplyError {
  const bad = (what: string) => new BadReplyError(`the daemon on ${path} sent ${what}, not a snapmount reply (${JSON.stringify(line.slice(0, 60).replace(/[^\x20-\x7e]/g, '?'))}${line.length > 60 ? '...' : ''}); is it snapmount, of the same version?`)
  let response: unknown
  try {
    response = JSON.parse(line)
  } catch {
    return bad('a line that is not JSON')
  }
  // Object(): null and numbers have no fields, rather than failing to destructure.
  const { type, done, total, code, message } = Object(response) as Record<string, unknown>
  if (type === 'progress' && typeof done === 'number' && typeof total === 'number') return response as ControlResponse
  if (type === 'result' && 'result' in (response as object)) return response as ControlResponse
  if (type === 'error' && typeof code === 'string' && typeof message === 'string') return response as ControlResponse
  return bad('JSON that is not a response')
}
