// How the tools stop a child process they started: SIGTERM, then SIGKILL should it outlive a grace
// period. Plain JavaScript for the bench; used by nginx.mjs and delay-netns.mjs.

/**
 * Sends `child` SIGTERM if it is still running, SIGKILL if it still is `graceMs` later; resolves
 * once `exited` (the caller's promise of its 'exit') does.
 */
export async function terminate(child, exited, graceMs) {
  const alive = () => child.exitCode === null && child.signalCode === null
  if (alive()) child.kill('SIGTERM')
  const timer = setTimeout(() => alive() && child.kill('SIGKILL'), graceMs)
  await exited
  clearTimeout(timer)
}
