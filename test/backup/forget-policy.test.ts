/**
 * The retention policy (src/backup/retention.ts) against a table of snapshot dates: restic's
 * bucket semantics (the newest of each of the last N hours/days/ISO weeks/months/years that
 * have a snapshot; the oldest kept while a bucket has counts left), keep-within on the
 * calendar of the time zone with a strict boundary, buckets in DST-free zones far from UTC
 * and across a DST change, ties, a clock that went backwards, combinations (the union, every
 * reason), and malformed policies. Then properties over random histories (fast-check).
 */
import '#sdk/backup/node/install.js';
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  HEAD_REASON,
  applyRetentionPolicy,
  describeRetentionPolicy,
  isoWeek,
  parseDuration,
  validateRetentionPolicy,
  type RetentionPolicy,
} from '#sdk/backup/commands/retention.js';
import { hasCode } from '#sdk/errors.js';

interface S {
  id: string;
  seq: number;
  timeMs: number;
}

/** Snapshots with seq 1.. in the order given, at the given ISO times (UTC unless offset). */
function hist(...times: string[]): S[] {
  return times.map((t, i) => ({ id: `s${i + 1}`, seq: i + 1, timeMs: Date.parse(t) }));
}

interface Case {
  name: string;
  snaps: S[];
  policy: RetentionPolicy;
  zone?: string;
  now?: string;
  /** Kept seqs, ascending. */
  keep: number[];
  /** Expected reasons of some kept seqs. */
  reasons?: Record<number, string[]>;
}

const NOW = '2030-01-01T00:00:00Z';

const CASES: Case[] = [
  {
    name: 'keep-last 3 of 5 keeps the 3 newest',
    snaps: hist(
      '2024-01-01T00:00Z',
      '2024-01-02T00:00Z',
      '2024-01-03T00:00Z',
      '2024-01-04T00:00Z',
      '2024-01-05T00:00Z',
    ),
    policy: { last: 3 },
    keep: [3, 4, 5],
    reasons: { 3: ['last snapshot'], 5: ['last snapshot'] },
  },
  {
    name: 'keep-last larger than the history keeps everything',
    snaps: hist('2024-01-01T00:00Z', '2024-01-02T00:00Z', '2024-01-03T00:00Z'),
    policy: { last: 10 },
    keep: [1, 2, 3],
  },
  {
    name: 'keep-last 1 of 1',
    snaps: hist('2024-01-01T00:00Z'),
    policy: { last: 1 },
    keep: [1],
  },
  {
    name: 'keep-daily keeps the newest of each day',
    snaps: hist(
      '2024-05-01T08:00Z',
      '2024-05-01T20:00Z',
      '2024-05-02T08:00Z',
      '2024-05-02T09:00Z',
      '2024-05-03T23:59:59Z',
    ),
    policy: { daily: 2 },
    keep: [4, 5],
    reasons: { 4: ['daily snapshot'], 5: ['daily snapshot'] },
  },
  {
    name: 'keep-daily counts days that have a snapshot, not calendar days',
    snaps: hist('2024-05-01T08:00Z', '2024-05-10T08:00Z', '2024-05-20T08:00Z', '2024-05-30T08:00Z'),
    policy: { daily: 3 },
    keep: [2, 3, 4],
  },
  {
    name: 'a bucket with counts left at the end of the list keeps the oldest snapshot too',
    snaps: hist('2024-05-01T08:00Z', '2024-05-01T09:00Z', '2024-05-02T08:00Z', '2024-05-02T09:00Z'),
    policy: { daily: 5 },
    keep: [1, 2, 4],
    reasons: { 1: ['oldest daily snapshot'], 2: ['daily snapshot'] },
  },
  {
    name: 'a bucket whose count is used up does not keep the oldest',
    snaps: hist('2024-05-01T08:00Z', '2024-05-01T09:00Z', '2024-05-02T08:00Z'),
    policy: { daily: 2 },
    keep: [2, 3],
  },
  {
    name: 'keep-hourly buckets by the hour',
    snaps: hist(
      '2024-05-01T10:05Z',
      '2024-05-01T10:55Z',
      '2024-05-01T11:00Z',
      '2024-05-01T11:59:59.999Z',
      '2024-05-01T13:00Z',
    ),
    policy: { hourly: 2 },
    keep: [4, 5],
  },
  {
    name: 'keep-weekly uses ISO weeks: Thu 2020-12-31 and Sun 2021-01-03 share week 2020-W53',
    snaps: hist('2020-12-28T12:00Z', '2020-12-31T12:00Z', '2021-01-03T12:00Z', '2021-01-04T00:00Z'),
    policy: { weekly: 2 },
    keep: [3, 4],
    reasons: { 3: ['weekly snapshot'], 4: ['weekly snapshot'] },
  },
  {
    name: 'keep-weekly: Mon 2024-12-30 is in 2025-W01 with Thu 2025-01-02, not in 2024-W52',
    snaps: hist('2024-12-29T12:00Z', '2024-12-30T12:00Z', '2025-01-02T12:00Z'),
    policy: { weekly: 2 },
    keep: [1, 3],
  },
  {
    name: 'keep-monthly',
    snaps: hist(
      '2024-01-15T00:00Z',
      '2024-01-31T23:00Z',
      '2024-02-01T00:00Z',
      '2024-02-29T12:00Z',
      '2024-04-01T00:00Z',
    ),
    policy: { monthly: 3 },
    keep: [2, 4, 5],
  },
  {
    name: 'keep-yearly',
    snaps: hist('2021-06-01T00:00Z', '2022-01-01T00:00Z', '2022-12-31T23:59Z', '2024-02-01T00:00Z'),
    policy: { yearly: 2 },
    keep: [3, 4],
  },
  {
    name: 'combinations keep the union, with every reason',
    snaps: hist(
      '2023-11-10T00:00Z',
      '2023-12-20T00:00Z',
      '2024-01-05T00:00Z',
      '2024-01-06T00:00Z',
      '2024-01-06T12:00Z',
    ),
    policy: { last: 2, daily: 2, monthly: 2 },
    keep: [2, 3, 4, 5],
    reasons: {
      2: ['monthly snapshot'],
      3: ['daily snapshot'],
      4: ['last snapshot'],
      5: ['last snapshot', 'daily snapshot', 'monthly snapshot'],
    },
  },
  {
    name: 'keep-daily 2 + keep-weekly 2 + keep-yearly 1: the daily ones and the week before',
    snaps: hist(
      '2024-03-01T10:00Z',
      '2024-03-04T10:00Z',
      '2024-03-11T10:00Z',
      '2024-03-12T10:00Z',
      '2024-03-13T10:00Z',
    ),
    policy: { daily: 2, weekly: 2, yearly: 1 },
    keep: [2, 4, 5],
    reasons: {
      2: ['weekly snapshot'],
      4: ['daily snapshot'],
      5: ['daily snapshot', 'weekly snapshot', 'yearly snapshot'],
    },
  },
  {
    name: 'unlimited keeps one per bucket without limit',
    snaps: hist(
      '2024-01-01T08:00Z',
      '2024-01-01T09:00Z',
      '2024-01-02T08:00Z',
      '2024-01-03T08:00Z',
      '2024-01-03T09:00Z',
    ),
    policy: { daily: -1 },
    keep: [1, 2, 3, 5],
    reasons: { 1: ['oldest daily snapshot'] },
  },
  {
    name: 'ties: two snapshots at the same instant, keep-last 1 keeps the higher seq',
    snaps: hist('2024-01-01T08:00Z', '2024-01-02T08:00Z', '2024-01-02T08:00Z'),
    policy: { last: 1 },
    keep: [3],
  },
  {
    name: 'ties: keep-daily 1 takes the higher seq of two equal times',
    snaps: hist('2024-01-02T08:00Z', '2024-01-02T08:00Z'),
    policy: { daily: 1 },
    keep: [2],
  },
  {
    name: 'the head is kept even when its clock put it before older snapshots',
    snaps: hist('2024-01-01T08:00Z', '2024-01-03T08:00Z', '2024-01-02T08:00Z'),
    policy: { last: 1 },
    keep: [2, 3],
    reasons: { 2: ['last snapshot'], 3: [HEAD_REASON] },
  },
  {
    name: 'keep-within 2d keeps what is strictly newer than the newest minus 2 days',
    snaps: hist(
      '2024-01-01T12:00Z',
      '2024-01-03T12:00Z',
      '2024-01-03T12:00:00.001Z',
      '2024-01-04T00:00Z',
      '2024-01-05T12:00Z',
    ),
    policy: { within: '2d' },
    keep: [3, 4, 5],
    reasons: { 3: ['within 2d'] },
  },
  {
    name: 'keep-within 36h counts hours',
    snaps: hist('2024-01-04T00:00Z', '2024-01-04T00:00:00.001Z', '2024-01-05T12:00Z'),
    policy: { within: '36h' },
    keep: [2, 3],
  },
  {
    name: 'keep-within 1m from 31 March reaches back to 2 March (Feb 31 = Mar 2, as Go)',
    snaps: hist(
      '2024-03-01T12:00Z',
      '2024-03-02T12:00Z',
      '2024-03-02T12:00:00.001Z',
      '2024-03-31T12:00Z',
    ),
    policy: { within: '1m' },
    keep: [3, 4],
  },
  {
    name: 'keep-within 1y from 29 Feb 2024 reaches back to 1 March 2023',
    snaps: hist('2023-03-01T00:00Z', '2023-03-01T00:00:00.001Z', '2024-02-29T00:00Z'),
    policy: { within: '1y' },
    keep: [2, 3],
  },
  {
    name: 'keep-within 1y2m3d4h combines units',
    // 2024-06-20 10:00 - 1y2m3d = 2023-04-17 10:00, - 4h = 06:00.
    snaps: hist('2023-04-17T06:00Z', '2023-04-17T06:00:01Z', '2024-06-20T10:00Z'),
    policy: { within: '4h3d2m1y' },
    keep: [2, 3],
    reasons: { 2: ['within 1y2m3d4h'] },
  },
  {
    name: 'keep-within is measured from the newest snapshot that is not in the future',
    snaps: hist('2024-05-01T00:00Z', '2024-05-06T00:00Z', '2024-05-09T00:00Z', '2031-01-01T00:00Z'),
    policy: { within: '7d' },
    now: NOW,
    keep: [2, 3, 4],
  },
  {
    name: 'keep-within with every snapshot in the future keeps them all',
    snaps: hist('2031-01-01T00:00Z', '2032-01-01T00:00Z'),
    policy: { within: '1d' },
    now: NOW,
    keep: [1, 2],
  },
  {
    name: 'keep-within combined with keep-monthly',
    snaps: hist('2023-10-15T00:00Z', '2023-11-15T00:00Z', '2023-12-30T00:00Z', '2024-01-02T00:00Z'),
    policy: { within: '7d', monthly: 2 },
    keep: [3, 4],
    reasons: { 3: ['within 7d', 'monthly snapshot'], 4: ['within 7d', 'monthly snapshot'] },
  },
  // --- time zones without DST, far from UTC ---
  {
    name: 'Asia/Kolkata (+05:30): 19:00 UTC is already the next day',
    snaps: hist('2024-03-08T10:00Z', '2024-03-10T10:00Z', '2024-03-10T18:00Z', '2024-03-10T19:00Z'),
    policy: { daily: 2 },
    zone: 'Asia/Kolkata',
    keep: [3, 4],
  },
  {
    name: 'the same history in UTC: one day, so the day before is the second',
    snaps: hist('2024-03-08T10:00Z', '2024-03-10T10:00Z', '2024-03-10T18:00Z', '2024-03-10T19:00Z'),
    policy: { daily: 2 },
    zone: 'UTC',
    keep: [1, 4],
  },
  {
    name: 'Asia/Tokyo (+09:00): 31 Jan 16:00 UTC is February',
    snaps: hist('2023-12-10T00:00Z', '2024-01-20T00:00Z', '2024-01-31T16:00Z'),
    policy: { monthly: 2 },
    zone: 'Asia/Tokyo',
    keep: [2, 3],
  },
  {
    name: 'America/Phoenix (-07:00): 1 Jan 03:00 UTC is still the old year',
    snaps: hist('2022-06-01T00:00Z', '2023-06-01T00:00Z', '2024-01-01T03:00Z'),
    policy: { yearly: 2 },
    zone: 'America/Phoenix',
    keep: [1, 3],
  },
  {
    name: 'the same history in UTC: 2024 and 2023',
    snaps: hist('2022-06-01T00:00Z', '2023-06-01T00:00Z', '2024-01-01T03:00Z'),
    policy: { yearly: 2 },
    zone: 'UTC',
    keep: [2, 3],
  },
  {
    name: 'Pacific/Kiritimati (+14:00): Sunday 10:00 UTC is Monday, a new ISO week',
    snaps: hist('2024-01-03T00:00Z', '2024-01-07T09:00Z', '2024-01-07T10:00Z'),
    policy: { weekly: 2 },
    zone: 'Pacific/Kiritimati',
    keep: [2, 3],
  },
  {
    name: 'Asia/Kathmandu (+05:45): hours start at :15 UTC',
    snaps: hist('2024-01-01T00:10Z', '2024-01-01T00:14Z', '2024-01-01T00:16Z'),
    policy: { hourly: 2 },
    zone: 'Asia/Kathmandu',
    keep: [2, 3],
  },
  // --- a zone with DST ---
  {
    name: 'Europe/Berlin: keep-within 1d is a calendar day, 25 hours over the autumn change',
    // Latest 2024-10-27 12:00 CET (11:00Z); minus 1 day = 2024-10-26 12:00 CEST = 10:00Z.
    snaps: hist('2024-10-26T10:00Z', '2024-10-26T10:30Z', '2024-10-27T11:00Z'),
    policy: { within: '1d' },
    zone: 'Europe/Berlin',
    keep: [2, 3],
  },
  {
    name: 'UTC: the same keep-within 1d is 24 hours',
    snaps: hist('2024-10-26T10:00Z', '2024-10-26T10:30Z', '2024-10-27T11:00Z'),
    policy: { within: '1d' },
    zone: 'UTC',
    keep: [3],
  },
  {
    name: 'Europe/Berlin: keep-within 24h is 24 hours whatever the zone',
    snaps: hist('2024-10-26T10:30Z', '2024-10-26T11:00:00.001Z', '2024-10-27T11:00Z'),
    policy: { within: '24h' },
    zone: 'Europe/Berlin',
    keep: [2, 3],
  },
  {
    name: 'Europe/Berlin: 23:30 UTC in summer is the next local day',
    snaps: hist('2024-07-01T12:00Z', '2024-07-01T21:00Z', '2024-07-01T23:30Z'),
    policy: { daily: 2 },
    zone: 'Europe/Berlin',
    keep: [2, 3],
  },
];

describe('retention policy: a table of snapshot dates', () => {
  for (const c of CASES) {
    it(c.name, () => {
      const plan = applyRetentionPolicy(c.snaps, c.policy, {
        timeZone: c.zone ?? 'UTC',
        now: Date.parse(c.now ?? NOW),
      });
      const kept = plan.keep.map((d) => d.snapshot.seq).sort((a, b) => a - b);
      assert.deepEqual(kept, c.keep);
      const removed = plan.remove.map((s) => s.seq).sort((a, b) => a - b);
      assert.deepEqual(
        removed,
        c.snaps.map((s) => s.seq).filter((q) => !c.keep.includes(q)),
      );
      for (const [seq, reasons] of Object.entries(c.reasons ?? {})) {
        const d = plan.keep.find((k) => k.snapshot.seq === Number(seq));
        assert.deepEqual(d?.reasons, reasons, `reasons of seq ${seq}`);
      }
      for (const d of plan.keep) assert.ok(d.reasons.length > 0, 'every kept one has a reason');
      // Both lists newest first.
      const times = (l: S[]): number[] => l.map((s) => s.timeMs);
      assert.deepEqual(
        times(plan.keep.map((d) => d.snapshot)),
        [...times(plan.keep.map((d) => d.snapshot))].sort((a, b) => b - a),
      );
    });
  }

  it('an empty history gives an empty plan', () => {
    assert.deepEqual(applyRetentionPolicy([], { last: 1 }), { keep: [], remove: [] });
  });

  it('the zone decides the day: one day in Kolkata, the oldest kept in UTC', () => {
    const snaps = hist('2024-03-10T10:00Z', '2024-03-10T19:00Z');
    const kolkata = applyRetentionPolicy(snaps, { daily: 1 }, { timeZone: 'Asia/Kolkata' });
    const utc = applyRetentionPolicy(snaps, { daily: 5 }, { timeZone: 'UTC' });
    assert.equal(kolkata.keep.length, 1);
    assert.deepEqual(
      utc.keep.map((d) => d.reasons),
      [['daily snapshot'], ['oldest daily snapshot']],
    );
  });
});

describe('retention policy: malformed policies are refused (USAGE), nothing decided', () => {
  const snaps = hist('2024-01-01T00:00Z', '2024-01-02T00:00Z');
  const bad: [string, unknown][] = [
    ['empty', {}],
    ['all zero', { last: 0, daily: 0, within: '0d' }],
    ['negative', { last: -2 }],
    ['fraction', { daily: 1.5 }],
    ['string count', { last: '3' }],
    ['huge', { last: 1e12 }],
    ['NaN', { weekly: Number.NaN }],
    ['unknown field', { last: 1, tags: ['x'] }],
    ['bad duration unit', { within: '3w' }],
    ['duration without unit', { within: '3' }],
    ['duration unit twice', { within: '1d2d' }],
    ['negative duration', { within: '-1d' }],
    ['duration not a string', { within: 3 }],
    ['not an object', 3],
    ['null', null],
    ['array', [1]],
  ];
  for (const [name, policy] of bad) {
    it(name, () => {
      assert.throws(
        () => applyRetentionPolicy(snaps, policy as RetentionPolicy),
        (e) => hasCode(e, 'USAGE'),
      );
    });
  }
  it('an unknown time zone', () => {
    assert.throws(
      () => applyRetentionPolicy(snaps, { last: 1 }, { timeZone: 'Mars/Olympus' }),
      (e) => hasCode(e, 'USAGE') && /time zone/.test(e.message),
    );
  });
});

describe('retention policy: helpers', () => {
  it('parses restic durations', () => {
    assert.deepEqual(parseDuration('2y5m7d3h'), { years: 2, months: 5, days: 7, hours: 3 });
    assert.deepEqual(parseDuration(' 36h '), { years: 0, months: 0, days: 0, hours: 36 });
    assert.deepEqual(parseDuration('1m'), { years: 0, months: 1, days: 0, hours: 0 });
  });
  it('normalises a policy: zero counts dropped, within canonical', () => {
    assert.deepEqual(validateRetentionPolicy({ last: 0, daily: 7, within: '3h1y' }), {
      daily: 7,
      within: '1y3h',
    });
  });
  it('describes a policy in words', () => {
    assert.equal(describeRetentionPolicy({ last: 3 }), 'keep the last 3 snapshots');
    assert.equal(
      describeRetentionPolicy({ last: 1, daily: 7, monthly: -1, within: '2y' }),
      'keep the last snapshot, 7 daily, all monthly and all within 2y of the newest',
    );
  });
  it('ISO weeks at year boundaries', () => {
    assert.deepEqual(isoWeek(2021, 1, 3), { year: 2020, week: 53 });
    assert.deepEqual(isoWeek(2021, 1, 4), { year: 2021, week: 1 });
    assert.deepEqual(isoWeek(2024, 12, 30), { year: 2025, week: 1 });
    assert.deepEqual(isoWeek(2026, 12, 31), { year: 2026, week: 53 });
    assert.deepEqual(isoWeek(2027, 1, 1), { year: 2026, week: 53 });
    assert.deepEqual(isoWeek(2024, 6, 15), { year: 2024, week: 24 });
  });
});

// --- properties ---

const ZONES = ['UTC', 'Europe/Berlin', 'Asia/Kolkata', 'America/New_York', 'Australia/Lord_Howe'];
const T0 = Date.parse('2020-01-01T00:00Z');
const T1 = Date.parse('2026-01-01T00:00Z');

/** Random histories: distinct times (seq increasing with time), 1..40 snapshots. */
const history = fc
  .uniqueArray(fc.integer({ min: T0, max: T1 }), { minLength: 1, maxLength: 40 })
  .map((ts) => {
    const sorted = [...ts].sort((a, b) => a - b);
    return sorted.map((timeMs, i) => ({ id: `s${i + 1}`, seq: i + 1, timeMs }));
  });

/** Random histories with ties and a clock that jumps back (seq not in time order). */
const messyHistory = fc
  .array(fc.integer({ min: T0, max: T1 }), { minLength: 1, maxLength: 30 })
  .chain((ts) =>
    fc
      .array(fc.boolean(), { minLength: ts.length, maxLength: ts.length })
      .map((dup) => ts.map((t, i) => (dup[i] && i > 0 ? (ts[i - 1] as number) : t))),
  )
  .map((ts) => ts.map((timeMs, i) => ({ id: `s${i + 1}`, seq: i + 1, timeMs })));

const count = fc.oneof(
  { weight: 3, arbitrary: fc.constant(undefined) },
  { weight: 3, arbitrary: fc.integer({ min: 0, max: 12 }) },
  { weight: 1, arbitrary: fc.constant(-1) },
);
const duration = fc
  .record({
    y: fc.integer({ min: 0, max: 3 }),
    m: fc.integer({ min: 0, max: 14 }),
    d: fc.integer({ min: 0, max: 40 }),
    h: fc.integer({ min: 0, max: 72 }),
  })
  .map(({ y, m, d, h }) => `${y}y${m}m${d}d${h}h`);

const policyArb: fc.Arbitrary<RetentionPolicy> = fc
  .record({
    last: count,
    hourly: count,
    daily: count,
    weekly: count,
    monthly: count,
    yearly: count,
    within: fc.option(duration, { nil: undefined }),
  })
  .map((p) => {
    const out: RetentionPolicy = {};
    for (const [k, v] of Object.entries(p)) {
      if (v !== undefined) (out as Record<string, unknown>)[k] = v;
    }
    return out;
  })
  .filter((p) => {
    try {
      validateRetentionPolicy(p);
      return true;
    } catch {
      return false;
    }
  });

const zoneArb = fc.constantFrom(...ZONES);
const NOW_MS = Date.parse('2025-06-01T00:00Z');

describe('retention policy: properties', () => {
  it('kept and removed partition the history; newest and head are kept; every kept one has a reason', () => {
    fc.assert(
      fc.property(messyHistory, policyArb, zoneArb, (snaps, policy, timeZone) => {
        const plan = applyRetentionPolicy(snaps, policy, { timeZone, now: NOW_MS });
        const kept = plan.keep.map((d) => d.snapshot.id);
        const removed = plan.remove.map((s) => s.id);
        assert.equal(new Set([...kept, ...removed]).size, snaps.length);
        assert.equal(kept.length + removed.length, snaps.length);
        const head = snaps.reduce((a, b) => (b.seq > a.seq ? b : a));
        assert.ok(kept.includes(head.id), 'the head is kept');
        const newest = [...snaps].sort((a, b) => b.timeMs - a.timeMs || b.seq - a.seq)[0] as S;
        assert.ok(kept.includes(newest.id), 'the newest by time is kept');
        for (const d of plan.keep) assert.ok(d.reasons.length > 0);
      }),
      { numRuns: 300 },
    );
  });

  it('keep-last N keeps exactly the N newest', () => {
    fc.assert(
      fc.property(history, fc.integer({ min: 1, max: 50 }), zoneArb, (snaps, n, timeZone) => {
        const plan = applyRetentionPolicy(snaps, { last: n }, { timeZone });
        const expected = snaps
          .slice(-n)
          .map((s) => s.seq)
          .sort((a, b) => a - b);
        assert.deepEqual(
          plan.keep.map((d) => d.snapshot.seq).sort((a, b) => a - b),
          expected,
        );
      }),
      { numRuns: 200 },
    );
  });

  it('idempotence: the policy applied to what it kept removes nothing', () => {
    fc.assert(
      fc.property(messyHistory, policyArb, zoneArb, (snaps, policy, timeZone) => {
        const first = applyRetentionPolicy(snaps, policy, { timeZone, now: NOW_MS });
        const again = applyRetentionPolicy(
          first.keep.map((d) => d.snapshot),
          policy,
          { timeZone, now: NOW_MS },
        );
        assert.deepEqual(again.remove, []);
      }),
      { numRuns: 300 },
    );
  });

  it('raising a count never removes a snapshot that was kept', () => {
    fc.assert(
      fc.property(
        history,
        policyArb,
        fc.constantFrom('last', 'hourly', 'daily', 'weekly', 'monthly', 'yearly'),
        fc.integer({ min: 1, max: 5 }),
        zoneArb,
        (snaps, policy, field, more, timeZone) => {
          const f = field as keyof Omit<RetentionPolicy, 'within'>;
          const cur = policy[f] ?? 0;
          const bigger = { ...policy, [f]: cur === -1 ? -1 : cur + more };
          const a = applyRetentionPolicy(snaps, policy, { timeZone, now: NOW_MS });
          const b = applyRetentionPolicy(snaps, bigger, { timeZone, now: NOW_MS });
          const keptB = new Set(b.keep.map((d) => d.snapshot.id));
          for (const d of a.keep) assert.ok(keptB.has(d.snapshot.id));
        },
      ),
      { numRuns: 200 },
    );
  });

  it('daily buckets: at most one kept snapshot per local day by that rule, the newest of it', () => {
    fc.assert(
      fc.property(messyHistory, fc.integer({ min: 1, max: 10 }), zoneArb, (snaps, n, timeZone) => {
        const plan = applyRetentionPolicy(snaps, { daily: n }, { timeZone });
        const day = (ms: number): string =>
          new Intl.DateTimeFormat('en-CA', { timeZone, dateStyle: 'short' }).format(ms);
        const byRule = plan.keep.filter((d) => d.reasons.includes('daily snapshot'));
        const days = byRule.map((d) => day(d.snapshot.timeMs));
        assert.equal(new Set(days).size, days.length);
        assert.ok(byRule.length <= n);
        for (const d of byRule) {
          const same = snaps.filter((s) => day(s.timeMs) === day(d.snapshot.timeMs));
          const newest = same.sort((a, b) => b.timeMs - a.timeMs || b.seq - a.seq)[0];
          assert.equal(newest?.id, d.snapshot.id);
        }
      }),
      { numRuns: 150 },
    );
  });
});
