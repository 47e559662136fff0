import type { Logger } from '../log.js'
import type { RemoteObserver } from './remote/observer.js'

/**
 * What opening a backend takes from the process: its environment (header secrets, proxies), its
 * log, and where remote requests are reported. The layers above a backend (cache, metering) are
 * not part of it: they are put around the opened backend where snapshots are opened
 * (src/snapshots/open-snapshot.ts).
 */
export interface OpenContext {
  env: Record<string, string | undefined>
  logger: Logger
  /** Gives the observer a remote snapshot reports its requests to (metrics); none when absent. */
  observe?: ((snapshot: string) => RemoteObserver) | undefined
  /**
   * Subscribes `listener` to the daemon's reloads (SIGHUP), returning the unsubscribe: a backend
   * reads again then what it read from files besides its source (a header's token file). Absent
   * where nothing reloads (`check`).
   */
  onReload?: ((listener: () => void) => () => void) | undefined
  /**
   * How long opening a local source may take before it is refused as hung (open-source.ts): the
   * config's read_timeout_ms. LOCAL_OPEN_TIMEOUT_MS when absent.
   */
  openTimeoutMs?: number | undefined
}
