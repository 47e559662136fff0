import { createConnection } from 'node:net'
import { describe } from '../backend/errors.js'
import { ControlUnavailableError, DaemonError } from './errors.js'
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
      for (let newline = buffered.indexOf('\n'); newline >= 0; newline = buffered.indexOf('\n')) {
        const response = JSON.parse(buffered.slice(0, newline)) as ControlResponse
        buffered = buffered.slice(newline + 1)
        if (response.type === 'progress') onProgress(response.done, response.total)
        else if (response.type === 'result') settle(() => resolve(response.result))
        else settle(() => reject(new DaemonError(response.code, response.message, response.fix)))
      }
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
