import t from 'tap'
import { describe } from '../../src/backend/errors.js'

t.test('describe: an error’s code and message in one phrase, whatever was thrown', async (t) => {
  const coded = Object.assign(new Error('no such file or directory'), { code: 'ENOENT' })
  t.equal(describe(coded), 'ENOENT: no such file or directory')
  t.equal(describe(Object.assign(new Error('EIO: i/o error, read'), { code: 'EIO' })), 'EIO: i/o error, read', 'a code already in the message is not repeated')
  t.equal(describe(new Error('plain')), 'plain', 'no code: the message alone')
  t.equal(describe('a string'), 'a string', 'not an error: as a string')
  t.equal(describe(42), '42')
  t.equal(describe(undefined), 'undefined')
  t.equal(describe(null), 'null')
})
