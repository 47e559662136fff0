import t from 'tap'
import { formatSize } from '../../src/cli/format.js'

t.test('sizes for people', async (t) => {
  t.equal(formatSize(0), '0 bytes')
  t.equal(formatSize(1023), '1023 bytes')
  t.equal(formatSize(1024), '1.0 KiB')
  t.equal(formatSize(5 * 2 ** 30 + 12_345), '5.0 GiB')
  t.equal(formatSize(3 * 2 ** 50), '3.0 PiB')
  t.equal(formatSize(2 ** 62), '4096.0 PiB', 'no unit past PiB')
})
