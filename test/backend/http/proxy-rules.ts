import t from 'tap'
import { usesProxy, type ProxySettings } from '../../../src/backend/http/proxy-rules.js'

const proxy = (settings: Partial<ProxySettings>): ProxySettings => ({ httpProxy: '', httpsProxy: '', noProxy: '', ...settings })
const via = (url: string, settings: Partial<ProxySettings>) => usesProxy(new URL(url), proxy(settings))

t.test('a proxy is used for the schemes it is set for: https falls back to http_proxy, not the other way', async (t) => {
  t.notOk(via('http://images.example/disk.img', {}), 'nothing set: direct')
  t.ok(via('http://images.example/disk.img', { httpProxy: 'http://proxy:3128' }))
  t.ok(via('https://images.example/disk.img', { httpProxy: 'http://proxy:3128' }), 'https through http_proxy when https_proxy is unset')
  t.ok(via('https://images.example/disk.img', { httpsProxy: 'http://proxy:3128' }))
  t.notOk(via('http://images.example/disk.img', { httpsProxy: 'http://proxy:3128' }), 'http does not use https_proxy')
})

t.test('no_proxy exempts hosts, their subdomains and ports as undici does', async (t) => {
  const set = { httpProxy: 'http://proxy:3128', httpsProxy: 'http://proxy:3128' }
  const exempt = (url: string, noProxy: string) => !via(url, { ...set, noProxy })
  t.ok(exempt('http://images.example/d', 'images.example'), 'the host itself')
  t.ok(exempt('http://IMAGES.example/d', 'images.EXAMPLE'), 'case does not matter')
  t.ok(exempt('http://a.images.example/d', 'images.example'), 'a subdomain')
  t.notOk(exempt('http://badimages.example/d', 'images.example'), 'not a mere suffix')
  t.ok(exempt('http://a.images.example/d', '.images.example'), 'a leading dot is ignored')
  t.ok(exempt('http://a.images.example/d', '*.images.example'), 'so is a leading *.')
  t.ok(exempt('http://images.example/d', 'other.example, images.example'), 'comma- and space-separated lists')
  t.ok(exempt('http://images.example/d', 'other.example images.example'))
  t.ok(exempt('http://images.example:8080/d', 'images.example:8080'), 'a port must match')
  t.notOk(exempt('http://images.example:8081/d', 'images.example:8080'))
  t.ok(exempt('http://images.example/d', 'images.example:80'), 'the scheme gives the default port')
  t.ok(exempt('https://images.example/d', 'images.example:443'))
  t.notOk(exempt('https://images.example/d', 'images.example:80'))
  t.ok(exempt('http://127.0.0.1:9000/d', '127.0.0.1'), 'addresses too')
  t.ok(exempt('http://[::1]:9000/d', '[::1]'), 'IPv6 in brackets')
  t.ok(exempt('http://anything.example/d', '*'), '* alone exempts every host')
  t.notOk(exempt('http://images.example/d', ''), 'empty: nothing exempt')
  t.notOk(exempt('http://images.example/d', ' , '))
})
