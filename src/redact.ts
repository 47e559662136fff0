/**
 * URLs fit for logs, error messages, `status` and metrics. Presigned URLs carry their signature
 * and credentials in the query, some servers take a bare token as the whole query (`?TOKEN`) or
 * in the fragment, and a URL may hold `user:password@`: none of that is ever shown. Scheme, host,
 * path and the names of `name=value` parameters stay, for diagnosis.
 */
export function redactUrl(url: URL | string): string {
  const copy = new URL(url)
  if (copy.username) copy.username = 'REDACTED'
  if (copy.password) copy.password = 'REDACTED'
  copy.hash = ''
  if (copy.search) copy.search = copy.search.slice(1).split('&').map(redactParameter).join('&')
  return copy.toString()
}

/** `name=value` keeps its name; a bare `TOKEN` may be the secret itself, so it goes whole. */
function redactParameter(parameter: string): string {
  const equals = parameter.indexOf('=')
  return equals > 0 ? `${parameter.slice(0, equals)}=REDACTED` : 'REDACTED'
}

/**
 * What a message may show of `text`, which should be a URL: redacted when it parses, else only its
 * scheme and host (no user information), never the whole text, which may be a URL with a secret in
 * it and a typo elsewhere.
 */
export function urlForMessage(text: string): string {
  if (URL.canParse(text)) return redactUrl(text)
  // Host characters only (names, IPv4, [IPv6], port): nothing a terminal or a log parser would act on.
  const start = /^([a-z][a-z0-9+.-]*:\/\/)(?:[^/?#]*@)?([\w.:[\]-]*)/i.exec(text)
  return start ? `an unparseable URL starting ${JSON.stringify(`${start[1]}${start[2]}`)}` : 'an unparseable URL'
}
