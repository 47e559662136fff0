// How the bench writes numbers and tables (bench/lib/format.mjs).
import t from 'tap'
import { fmt, fmtAmp, fmtCount, fmtCpu, fmtKib, fmtMs, fmtShare, latency, okOr, table } from '../../bench/lib/format.mjs'

t.test('rates: one decimal below 100, whole and grouped from 100', async (t) => {
  t.equal(fmt(0), '0.0')
  t.equal(fmt(99.94), '99.9')
  t.equal(fmt(99.96), '100.0', 'rounds within its own rule: still below 100')
  t.equal(fmt(100), '100')
  t.equal(fmt(1234.5), '1,235')
  t.equal(fmt(undefined), 'n/a')
  t.equal(fmt(NaN), 'n/a')
})

t.test('latencies: two decimals below 10 ms, one from 10', async (t) => {
  t.equal(fmtMs(9.994), '9.99')
  t.equal(fmtMs(12.44), '12.4')
  t.equal(fmtMs(undefined), 'n/a')
})

t.test('bytes per byte: three decimals where the overhead shows', async (t) => {
  t.equal(fmtAmp(1.0004), '1.000')
  t.equal(fmtAmp(1.503), '1.503')
  t.equal(fmtAmp(12.34), '12.3')
  t.equal(fmtAmp(1234), '1,234')
  t.equal(fmtAmp(Infinity), 'n/a', 'nothing read')
})

t.test('KiB per read: one decimal up to 10,000, so a block plus its headers is not shown as the block', async (t) => {
  t.equal(fmtKib(128.3), '128.3')
  t.equal(fmtKib(9999.94), '9999.9')
  t.equal(fmtKib(10_539), '10,539')
  t.equal(fmtKib(undefined), 'n/a')
})

t.test('counts, CPU seconds, shares, checks, latency pairs', async (t) => {
  t.equal(fmtCount(8192), '8,192')
  t.equal(fmtCount(undefined), 'n/a')
  t.equal(fmtCpu(1.875), '1.88')
  t.equal(fmtCpu(0), '0.00')
  t.equal(fmtCpu(NaN), 'n/a')
  t.equal(fmtShare(0.125), '13 %')
  t.equal(fmtShare(0), '0 %')
  t.equal(fmtShare(undefined), 'n/a')
  t.equal(okOr(true), 'OK')
  t.equal(okOr(false), 'MISMATCH')
  t.equal(okOr(undefined), 'n/a')
  t.equal(latency({ p50Ms: 2.5, p99Ms: 17.38 }), '2.50 / 17.4')
  t.equal(latency(undefined), 'n/a')
})

t.test('a table pads each column to its widest cell, header rule included', async (t) => {
  const text = table([
    ['measurement', 'a', 'raw'],
    ['seq', '1,234', '-'],
    ['  p50 / p99 ms', '2.50 / 17.4', '12.4 / 17.8'],
  ])
  t.equal(
    text,
    [
      '| measurement    | a           | raw         |',
      '| -------------- | ----------- | ----------- |',
      '| seq            | 1,234       | -           |',
      '|   p50 / p99 ms | 2.50 / 17.4 | 12.4 / 17.8 |',
    ].join('\n'),
  )
})
