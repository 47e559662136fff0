import t from 'tap'
import { runConformance } from '../fixtures/backend-conformance.js'
import { SMALL_SIZE, specSource, useAwsCredentials } from '../fixtures/conformance-sources.js'
import { FAUX_S3_ENV, startFauxS3 } from '../fixtures/fauxqs.js'
import { seededBytes } from '../fixtures/test-data.js'

// The S3 backend against fauxqs, in this process. It checks no signatures (radosgw does).
void runConformance(t, 's3 backend on fauxqs', async (t) => {
  useAwsCredentials(FAUX_S3_ENV.AWS_ACCESS_KEY_ID, FAUX_S3_ENV.AWS_SECRET_ACCESS_KEY)
  const s3 = await startFauxS3(t)
  const bytes = seededBytes(7, SMALL_SIZE)
  await s3.createBucket('snaps')
  await s3.putObject('snaps', 'small.img', bytes)
  return {
    small: specSource({ type: 's3', url: 's3://snaps/small.img', endpoint: s3.endpoint, region: s3.region }, SMALL_SIZE, (offset, length) => bytes.subarray(offset, offset + length)),
    large: { missing: 'fauxqs keeps objects in this process\'s memory: 5 GiB would not fit (radosgw covers it)' },
    abortsInFlight: true,
  }
})
