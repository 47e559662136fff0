/** Proxy settings as the environment gives them (http_proxy, https_proxy, no_proxy); '' for none. */
export interface ProxySettings {
  httpProxy: string
  httpsProxy: string
  noProxy: string
}

/**
 * Whether requests to `url` go through a proxy. The rules are those of undici's
 * EnvHttpProxyAgent for the same settings, since that agent carries whatever is proxied and the
 * direct client must take exactly the rest: https uses https_proxy, else http_proxy; no_proxy
 * lists hosts (comma- or space-separated, each optionally `:port`, a leading `.` or `*.` ignored)
 * that are reached directly, along with their subdomains, and `*` alone exempts every host.
 */
export function usesProxy(url: URL, proxy: ProxySettings): boolean {
  const https = url.protocol === 'https:'
  const configured = https ? proxy.httpsProxy !== '' || proxy.httpProxy !== '' : proxy.httpProxy !== ''
  return configured && !exempted(url, proxy.noProxy)
}

function exempted(url: URL, noProxy: string): boolean {
  if (noProxy === '*') return true
  // `host` keeps an IPv6 address's brackets, as no_proxy entries write them.
  const hostname = url.host.replace(/:\d*$/, '').toLowerCase()
  const port = Number.parseInt(url.port, 10) || (url.protocol === 'https:' ? 443 : 80)
  return noProxy
    .split(/[,\s]/)
    .filter((entry) => entry !== '')
    .some((entry) => {
      const withPort = /^(.+):(\d+)$/.exec(entry)
      const host = (withPort ? withPort[1]! : entry).replace(/^\*?\./, '').toLowerCase()
      const entryPort = withPort ? Number.parseInt(withPort[2]!, 10) : 0
      if (entryPort && entryPort !== port) return false
      return hostname === host || hostname.endsWith(`.${host}`)
    })
}
