import { BadResponseError } from './remote-errors.js'

/** An HTTP/1.x response's status line and header fields (RFC 9112 §4, §5). */
export interface ResponseHead {
  status: number
  /** Names lowercased; a field sent more than once is joined with ', ' (RFC 9110 §5.3). */
  headers: Record<string, string>
  /** Whether the connection may carry another request after this response's body. */
  keepAlive: boolean
  /** The body's length when Content-Length delimits it; undefined for a chunked or close-delimited body. */
  contentLength: number | undefined
}

const STATUS_LINE = /^HTTP\/1\.([01]) (\d{3})(?: .*)?$/
const FIELD = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+):[ \t]*(.*?)[ \t]*$/

/**
 * Parses the text of a response head, without its final empty line. Anything malformed is a
 * BadResponseError (worth a retry on a new connection), never a guess.
 */
export function parseResponseHead(text: string, url: string): ResponseHead {
  const lines = text.split('\r\n')
  const statusLine = STATUS_LINE.exec(lines[0]!)
  if (!statusLine) throw new BadResponseError(url, `status line ${JSON.stringify(lines[0]!.slice(0, 80))}`)
  const headers: Record<string, string> = {}
  for (const line of lines.slice(1)) {
    // Also refuses obsolete line folding (a line starting with white space), as RFC 9112 §5.2 allows.
    const field = FIELD.exec(line)
    if (!field) throw new BadResponseError(url, `header line ${JSON.stringify(line.slice(0, 80))}`)
    const name = field[1]!.toLowerCase()
    const value = field[2]!
    headers[name] = name in headers ? `${headers[name]}, ${value}` : value
  }
  const http11 = statusLine[1] === '1'
  const connection = (headers.connection ?? '').toLowerCase().split(',').map((token) => token.trim())
  return {
    status: Number(statusLine[2]),
    headers,
    keepAlive: http11 ? !connection.includes('close') : connection.includes('keep-alive'),
    contentLength: contentLength(headers, url),
  }
}

function contentLength(headers: Record<string, string>, url: string): number | undefined {
  // Transfer-Encoding overrides Content-Length (RFC 9112 §6.3): the body is not delimited by it.
  if (headers['transfer-encoding'] !== undefined) return undefined
  const value = headers['content-length']
  if (value === undefined) return undefined
  if (!/^\d{1,15}$/.test(value)) throw new BadResponseError(url, `Content-Length ${JSON.stringify(value)}`)
  return Number(value)
}
