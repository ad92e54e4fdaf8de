import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseWatchRequest, topicOf, DEFAULT_STREAM_SECONDS } from '../../helper/api/watch-service.js';
import { WatchTopic } from '../../helper/gen/lanrage/v1/watch.js';

test('watch requests: topics filter, duration bounds, unknown topics refused', () => {
  const all = parseWatchRequest({ topics: [], maxDurationSeconds: 0 });
  assert.equal(all.durationMs, DEFAULT_STREAM_SECONDS * 1000);
  assert.equal(all.wants(WatchTopic.WATCH_TOPIC_METRICS), true);
  const some = parseWatchRequest({ topics: [WatchTopic.WATCH_TOPIC_HELPER_STATUS], maxDurationSeconds: 30 });
  assert.equal(some.wants(WatchTopic.WATCH_TOPIC_METRICS), false);
  assert.equal(some.wants(WatchTopic.WATCH_TOPIC_HELPER_STATUS), true);
  assert.equal(some.durationMs, 30_000);
  assert.throws(() => parseWatchRequest({ topics: [99 as WatchTopic], maxDurationSeconds: 0 }), /unknown watch topic/);
  assert.throws(() => parseWatchRequest({ topics: [0 as WatchTopic], maxDurationSeconds: 0 }), /unknown watch topic/);
  assert.throws(() => parseWatchRequest({ topics: [], maxDurationSeconds: 5 }), /10-3600/);
});

test('each event kind maps to its topic', () => {
  assert.equal(topicOf({ metrics: { cpuPercent: 1, memoryUsedBytes: 0, memoryTotalBytes: 0, netRxBytesPerSecond: 0, netTxBytesPerSecond: 0, helperCpuPercent: 0, helperRssBytes: 0 } }), WatchTopic.WATCH_TOPIC_METRICS);
  assert.equal(topicOf({ party: {} }), WatchTopic.WATCH_TOPIC_PARTY);
  assert.equal(topicOf({}), WatchTopic.WATCH_TOPIC_UNSPECIFIED);
});
