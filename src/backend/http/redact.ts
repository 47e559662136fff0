/**
 * A URL fit for logs and error messages: no password, and no query values (presigned URLs carry
 * their signature and credentials there). Paths and parameter names stay, for diagnosis.
 */
export function redactUrl(url: URL | string): string {
  const copy = new URL(url)
  if (copy.password) copy.password = 'REDACTED'
  for (const key of new Set(copy.searchParams.keys())) copy.searchParams.set(key, 'REDACTED')
  return copy.toString()
}
