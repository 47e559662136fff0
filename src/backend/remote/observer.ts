/**
 * What a remote backend reports about its requests, for metrics. Every attempt of every request
 * (HEAD, ranged GET, GetObject) is reported once it settles; a retry is reported when one is
 * decided. Implementations must be cheap and must not throw: they run on the read path.
 */
export interface RemoteObserver {
  /** One request attempt settled: how long it took, the body bytes it delivered, and whether it failed. */
  request(event: { durationMs: number; bytes: number; failed: boolean }): void
  /** A failed attempt is going to be retried. */
  retry(): void
}
