// Runs inside a network namespace for tools/delay-netns.mjs's forward(): takes a listening socket
// from its parent, bound on the host's 127.0.0.1, and relays each connection it accepts to
// 127.0.0.1:PORT in this namespace. A socket keeps the namespace it was made in: the listener is
// the host's, the connections this process opens are the namespace's.
//
//   node netns-relay.mjs PORT      (with an IPC channel: the parent sends 'listen' and the server)

import { connect } from 'node:net'

const port = Number(process.argv[2])
process.once('message', (message, server) => {
  server.on('connection', (outside) => {
    const inside = connect({ host: '127.0.0.1', port })
    outside.pipe(inside).pipe(outside)
    // A failure on either side resets the other (a refused connection inside becomes a reset
    // outside: the host's connection was already accepted); a close closes it.
    inside.once('error', () => outside.resetAndDestroy())
    outside.once('error', () => inside.resetAndDestroy())
    inside.once('close', () => outside.destroy())
    outside.once('close', () => inside.destroy())
  })
  process.send('listening')
})
// Its parent gone, the relay has no one to serve.
process.once('disconnect', () => process.exit(0))
