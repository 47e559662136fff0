/** One response the proxy is asked about: its request's method, path and closed range, if any. */
export interface ProxiedResponse {
  method: string
  path: string
  /** First and last byte of `Range: bytes=A-B`; undefined without a closed range. */
  start: number | undefined
  end: number | undefined
}

export interface CorruptingProxy {
  /** `http://127.0.0.1:PORT` */
  origin: string
  url(path: string): string
  /** Every bit flipped so far: the path, and the absolute offset of the byte (range start + body position). */
  readonly flips: Array<{ path: string; offset: number }>
  /** Responses passed on so far, flipped or not. */
  responses(): number
  /** Replaces the decision for later responses. */
  setCorrupt(corrupt: Corrupt): void
  close(): Promise<void>
}

/**
 * An HTTP proxy on 127.0.0.1 in front of `origin` that flips one bit in the body of each response
 * `corrupt` picks, keeping status, headers and ETag as they are.
 */
export declare function startCorruptingProxy(options: {
  origin: string
  corrupt: Corrupt
  /** Milliseconds to hold each request before forwarding it (default none): a slow answer. */
  delayMs?: (response: ProxiedResponse) => number
}): Promise<CorruptingProxy>

/** false: pass the body on as it is; true: flip a bit in its middle byte; a number: in the byte at that absolute offset. */
export type Corrupt = (response: ProxiedResponse) => boolean | number
